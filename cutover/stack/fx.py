"""Indicative exchange rates: one way to add money of different currencies into one figure.

A plan's money limits in one reference currency, `cutover evaluate`'s headline totals and the
TUI's amount sort all need to compare a naira with a dollar. They read one rates file with its
date (cutover/fixtures/fx/indicative.toml by default), so every converted figure can say which
rates made it. Conversion is for judging and sorting only: money itself stays integer minor
units in its own currency (``cutover.domain``).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, PositiveFloat, field_validator

from cutover.config import StrictModel, config_model, load
from cutover.domain import MoneyError, currency_exponent
from cutover.errors import ConfigError
from cutover.paths import fixtures_dir

DEFAULT_FX: Final = ("fx", "indicative.toml")


@config_model("fx", "cutover/fixtures/fx/*.toml (named by a plan's top-level fx)")
class FxRates(StrictModel):
    """Indicative rates: units of each currency per one unit of the reference currency."""

    as_of: dt.date = Field(description="The date the rates were taken.")
    reference: str = Field(description="ISO 4217 code every amount is converted into.")
    note: str = Field("", description="Where the rates come from, in words.")
    units_per_reference: dict[str, PositiveFloat] = Field(
        description="Units of each currency per one unit of the reference currency.")

    @field_validator("reference")
    @classmethod
    def _known(cls, code: str) -> str:
        try:
            currency_exponent(code)
        except MoneyError as exc:
            raise ValueError(str(exc)) from exc
        return code

    def label(self, source: str) -> str:
        """How a converted figure names its rates."""
        return f"{self.reference} at indicative rates of {self.as_of.isoformat()} ({source})"

    def to_reference_minor(self, amount_minor: int, currency: str) -> int:
        """``amount_minor`` of ``currency`` in minor units of the reference currency (rounded
        half away from zero); ConfigError when the file has no rate for ``currency``."""
        rate = self.units_per_reference.get(currency)
        if rate is None:
            raise ConfigError(f"no indicative rate for {currency}; known: "
                              f"{', '.join(sorted(self.units_per_reference))}")
        major = amount_minor / 10 ** currency_exponent(currency) / rate
        scaled = major * 10 ** currency_exponent(self.reference)
        return int(scaled + 0.5) if scaled >= 0 else -int(-scaled + 0.5)


def reference_amounts(fx: FxRates, amount_minor: np.ndarray, currency: pa.Array
                      ) -> np.ndarray:
    """Each amount in major units of the reference currency (NaN for a currency without a
    rate): vectorised, for sorting and filtering mixed currencies."""
    codes = sorted(fx.units_per_reference)
    per_minor = np.array([1.0 / (10 ** _exponent(c) * fx.units_per_reference[c]) for c in codes]
                         + [np.nan])
    index = pc.fill_null(pc.index_in(currency, value_set=pa.array(codes, pa.string())),
                         len(codes)).to_numpy(zero_copy_only=False)
    return np.asarray(amount_minor, np.float64) * per_minor[index]


def min_amount_minor(fx: FxRates, reference_major: float) -> dict[str, int]:
    """Per currency with a rate, the smallest amount in its minor units worth at least
    ``reference_major`` of the reference currency (a filter over mixed currencies)."""
    return {c: int(np.ceil(reference_major * rate * 10 ** _exponent(c) - 1e-9))
            for c, rate in fx.units_per_reference.items()}


def _exponent(code: str) -> int:
    try:
        return currency_exponent(code)
    except MoneyError as exc:
        raise ConfigError(f"indicative rates: {exc}") from exc


def default_fx_path() -> Path:
    """The shipped rates file."""
    return fixtures_dir().joinpath(*DEFAULT_FX)


@lru_cache(maxsize=8)
def load_fx(path: Path | None = None) -> FxRates:
    """Read and validate a rates file (the shipped one by default)."""
    return load(FxRates, Path(path) if path else default_fx_path())
