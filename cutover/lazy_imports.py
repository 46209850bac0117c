"""The modules cutover imports inside functions on purpose, and why; nothing else may be.

A module-level import shows the graph that runs; an import inside a function hides it from a
reader (import-linter still sees it). Only these are deferred, each because most commands never
need it and importing it costs start-up time or memory. The command layer (``cutover/cli``)
defers every command's own imports so ``cutover --help`` starts fast; that is its design, not
an exception listed here. ``tests/unit/test_layers.py`` fails on any other function-level import.
"""

from __future__ import annotations

from typing import Final

#: Top-level package name -> why it is imported where it is used.
LAZY_IMPORTS: Final[dict[str, str]] = {
    "xgboost": "about 0.5 s and 150 MB to import; only training, scoring and drill-down need it",
    "matplotlib": "about 0.4 s; only report charts need it",
    "ray": "an optional extra; only --engine ray needs it",
    "zeep": "about 0.3 s; only live SOAP calls, record, describe and cassette playback need it",
    "vcr": "only cassette recording and playback need it",
    "deepdiff": "only the drill-down of one mismatch needs it",
    "psycopg": "an optional driver; only a PostgreSQL ledger needs it",
    "sqlalchemy": "about 0.2 s; only the ledger and plan state need it",
    "lxml": "only XML adapters need it",
    "yaml": "only cassettes need it",
    "textual": "only the TUI needs it",
    "rich": "only terminal rendering needs it",
    "requests": "only outside HTTP calls need it",
    "uvicorn": "only `cutover serve` and `cutover mirror` need it",
    "starlette": "only `cutover serve` and `cutover mirror` need it",
    "httpx": "only HTTP clients need it",
    "pyiso8583": "only ISO 8583 logs need it",
    "mt940": "only MT940 statements need it",
    "xmlschema": "only ISO 20022 validation needs it",
    "scipy": "only the statistical tests of feed health need it",
}
