"""Where cutover finds its fixtures (code tables, WSDL, rules, layouts, plans), in one place.

The shipped fixtures are package data under ``cutover/fixtures`` so a wheel carries them; every
module resolves fixture files through ``fixtures_dir()`` so a test, a demo or a deployment can
point the whole tool at another directory with one environment variable.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Final

#: Environment variable that overrides the fixtures directory (tests, demos, deployments).
FIXTURES_ENV: Final = "CUTOVER_FIXTURES_DIR"


def shipped_fixtures_dir() -> Path:
    """The fixtures that ship inside the package (a wheel is installed unzipped, so a path)."""
    return Path(str(resources.files("cutover") / "fixtures"))


def fixtures_dir() -> Path:
    """Return the fixtures directory: ``$CUTOVER_FIXTURES_DIR`` or the shipped one."""
    override = os.environ.get(FIXTURES_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return shipped_fixtures_dir()
