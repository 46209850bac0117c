"""The candidate stack as an HTTP service (``cutover serve``): the contract in docs/openapi.yaml."""
