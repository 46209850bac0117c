"""Value maps: one foreign vocabulary <-> cutover's canonical one, in both directions.

A legacy core or a foreign export speaks its own codes (``840`` for USD, ``E`` for ecom,
``CASH_OUT`` for a channel). A mapping file names a value map for such a field and cutover
translates foreign -> canonical when it reads (responses, cassettes, CSV columns) and
canonical -> foreign when it writes a request. A map is one-to-one, so both directions are
exact; a value the map does not hold is an error listing the allowed values, never a guess.

A map is given inline (``{ E = "ecom", P = "pos" }``), by the name of a table shipped in
``cutover/fixtures/maps/`` (``iso4217_numeric``, ``iso3166_numeric``) or by a path to a TOML
file with a ``[values]`` table, so several mapping files can share one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.config import StrictModel, config_model, load
from cutover.errors import ConfigError
from cutover.paths import fixtures_dir

MAPS_DIRNAME: Final = "maps"
#: How many allowed values an error message lists before "...".
ALLOWED_SHOWN_MAX: Final = 12


@config_model("value-map", "cutover/fixtures/maps/*.toml, or any file a mapping's [maps] names")
class ValueMapFile(StrictModel):
    """A shared value map: foreign value = canonical value, one to one."""

    description: str = ""
    values: dict[str, str]


@dataclass(frozen=True)
class ValueMap:
    """One-to-one translation between a foreign vocabulary and the canonical one."""

    name: str
    to_canonical: dict[str, str]
    to_foreign: dict[str, str]

    @classmethod
    def build(cls, name: str, values: dict[str, str], where: str) -> ValueMap:
        """Check that ``values`` (foreign -> canonical) is one to one; ConfigError if not."""
        if not values:
            raise ConfigError(f"{where}: value map {name!r} is empty")
        reverse: dict[str, str] = {}
        for foreign, canonical in values.items():
            if canonical in reverse:
                raise ConfigError(
                    f"{where}: value map {name!r} sends both {reverse[canonical]!r} and "
                    f"{foreign!r} to {canonical!r}; a map must be one to one to work both ways")
            reverse[canonical] = foreign
        return cls(name, dict(values), reverse)

    def canonical(self, foreign: str) -> str:
        """The canonical value of a foreign one; ValueError listing the allowed values."""
        try:
            return self.to_canonical[str(foreign)]
        except KeyError:
            raise ValueError(f"{foreign!r} is not in value map {self.name!r}; allowed: "
                             f"{_shown(self.to_canonical)}") from None

    def foreign(self, canonical: str) -> str:
        """The foreign value of a canonical one; ValueError listing the allowed values."""
        try:
            return self.to_foreign[str(canonical)]
        except KeyError:
            raise ValueError(f"{canonical!r} has no entry in value map {self.name!r}; allowed: "
                             f"{_shown(self.to_foreign)}") from None

    def canonical_array(self, values: pa.Array) -> pa.Array:
        """Vectorised foreign -> canonical; null where the value is not in the map."""
        keys = pa.array(list(self.to_canonical), pa.string())
        targets = pa.array(list(self.to_canonical.values()), pa.string())
        index = pc.index_in(values.cast(pa.string()), value_set=keys)
        return pc.take(targets, index)

    def allowed(self) -> str:
        """The foreign values, for a quarantine reason."""
        return _shown(self.to_canonical)


def _shown(values: dict[str, str]) -> str:
    keys = sorted(values)
    text = ", ".join(keys[:ALLOWED_SHOWN_MAX])
    return text + (f", ... ({len(keys)} in all)" if len(keys) > ALLOWED_SHOWN_MAX else "")


def shipped_maps() -> list[str]:
    """Names of the value maps that ship with cutover."""
    return sorted(p.stem for p in (fixtures_dir() / MAPS_DIRNAME).glob("*.toml"))


def resolve_map(name: str, spec: str | dict[str, str], base: Path, where: str) -> ValueMap:
    """A value map from a mapping's ``[maps]`` entry: inline table, shipped name or file."""
    if isinstance(spec, dict):
        return ValueMap.build(name, spec, where)
    shipped = fixtures_dir() / MAPS_DIRNAME / f"{spec}.toml"
    path = shipped if shipped.is_file() else (base / spec).resolve()
    if not path.is_file():
        raise ConfigError(f"{where}: maps.{name} = {spec!r} is neither a shipped map "
                          f"({', '.join(shipped_maps())}) nor a file next to the mapping")
    doc = load(ValueMapFile, path)
    return ValueMap.build(name, doc.values, str(path))


def unmapped_mask(vmap: ValueMap, values: pa.Array) -> np.ndarray:
    """True where a non-null foreign value is not in the map (vectorised)."""
    mapped = vmap.canonical_array(values)
    return (pc.is_null(mapped).to_numpy(zero_copy_only=False)
            & pc.is_valid(values).to_numpy(zero_copy_only=False))
