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

from cutover.errors import InputError

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


def output_dir(path: Path | str, option: str, *, create: bool = True) -> Path:
    """Check a directory cutover is about to write into (and create it, parents too).

    ``InputError`` naming the option when the path is a file, or a parent is a file, or the
    directory cannot be made: the user learns it before any work, not as a traceback after.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: exists and is not a directory")
    blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise InputError(f"{option} {path}: {blocked} is a file, not a directory")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{option} {path}: cannot create the directory:"
                             f" {exc.strerror or exc}") from exc
    return path


def output_file(path: Path | str, option: str) -> Path:
    """Check a file cutover is about to write (creating its parent directories).

    ``InputError`` naming the option when the path is a directory or its parent cannot be
    a directory.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory; give a file name")
    output_dir(path.parent, f"{option} (its folder)")
    return path
