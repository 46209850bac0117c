"""`cutover mirror` and `cutover load`: live traffic through the legacy core, shadowed by the candidate."""
