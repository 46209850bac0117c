"""The reference candidate stack: point-in-time features, XGBoost score, rules, routing, retries.

``default_stack`` is the candidate replay loads by default (``cutover.stack:default_stack``).
Submodules are imported lazily so that importing ``cutover.stack`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cutover.stack.default import load_stack

if TYPE_CHECKING:
    from cutover.stack.default import DefaultStack

__all__ = ["default_stack"]


def default_stack(models: str | Path | None = None, version: str | None = None,
                  rules: str | Path | None = None) -> DefaultStack:
    """Load the reference stack: models from ``models`` (else $CUTOVER_MODELS, else ./models),
    ``version`` (else the registry's latest), ``rules`` (else cutover/fixtures/rules/default.toml)."""
    return load_stack(models, version, rules)
