"""Where cutover finds its fixtures (code tables, WSDL, rules), in one place.

Every module resolves fixture files through ``fixtures_dir()`` so a test, a demo or an
installed copy can point the whole tool at another directory with one environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import cutover

#: Environment variable that overrides the fixtures directory (tests, demos, deployments).
FIXTURES_ENV: Final = "CUTOVER_FIXTURES_DIR"


def fixtures_dir() -> Path:
    """Return the fixtures directory: ``$CUTOVER_FIXTURES_DIR`` or ``<repo>/fixtures``."""
    override = os.environ.get(FIXTURES_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path(cutover.__file__).resolve().parents[1] / "fixtures"
