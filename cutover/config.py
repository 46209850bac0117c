"""Strict configuration models: every TOML file cutover reads is validated by one of these.

A configuration file is input from outside, so it is checked where it enters: unknown keys are
refused (a typo must not silently fall back to a default), numbers must be finite, and the error
names the file, the key path and, for an unknown key, the keys that are allowed. Each loader
declares its model with ``@config_model("kind", "where it lives")``; ``docs/config.md`` is
generated from the registered models (``python -m cutover.config > docs/config.md``) and a test
fails when it is stale.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from cutover import config as registered
from cutover.errors import ConfigError

#: How many problems one error message lists before "and N more".
PROBLEMS_SHOWN_MAX: Final = 5


class StrictModel(BaseModel):
    """A configuration section: unknown keys refused, values immutable, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              validate_default=True)


Model = TypeVar("Model", bound=StrictModel)

#: kind -> (model, where such files live), for the generated reference.
REGISTRY: dict[str, tuple[type[StrictModel], str]] = {}


def config_model(kind: str, where: str) -> Callable[[type[Model]], type[Model]]:
    """Register a model as the schema of one kind of configuration file."""
    def register(cls: type[Model]) -> type[Model]:
        REGISTRY[kind] = (cls, where)
        return cls
    return register


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; a missing, unreadable, non-UTF-8 or malformed file is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): is it a TOML file?") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def validate(model: type[Model], doc: Any, source: str | Path) -> Model:
    """Validate ``doc`` against ``model``; translate pydantic's errors into one ConfigError."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_errors(model, exc)}") from None


def load(model: type[Model], path: Path) -> Model:
    """Read and validate one TOML file."""
    return validate(model, read_toml(path), path)


def describe_errors(model: type[StrictModel], exc: ValidationError) -> str:
    """Pydantic's errors as "key.path: problem" phrases, unknown keys with the allowed ones."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = key_path(err["loc"])
        if err["type"] == "extra_forbidden":
            allowed = allowed_keys(model, err["loc"][:-1])
            problems.append(f"unknown key {loc!r}" + (f"; allowed: {', '.join(allowed)}"
                                                       if allowed else ""))
        else:
            problems.append(f"{loc}: {err['msg']}" + _got(err))
    more = len(problems) - PROBLEMS_SHOWN_MAX
    text = "; ".join(problems[:PROBLEMS_SHOWN_MAX])
    return text + (f"; and {more} more" if more > 0 else "")


def key_path(loc: tuple[Any, ...]) -> str:
    """A key path as a person writes it: ``expected[0].segment.planet``."""
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for "the key itself", already named
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _got(err: Any) -> str:
    if err["type"] in ("missing",) or "input" not in err:
        return ""
    shown = repr(err["input"])
    return f" (got {shown[:60]})"


def allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a model accepts at ``loc`` (a path of keys, list indexes and dict keys)."""
    current: Any = model
    for part in loc:
        current = _child_model(current, part)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(f.alias or name for name, f in current.model_fields.items())
    return []


def _child_model(current: Any, part: Any) -> Any:
    if isinstance(current, type) and issubclass(current, BaseModel):
        field = current.model_fields.get(str(part))
        return _unwrap(field.annotation) if field else None
    return current if isinstance(part, int) or isinstance(current, type) else None


def _unwrap(annotation: Any) -> Any:
    """The model inside ``X | None``, ``list[X]`` or ``dict[str, X]``, else the annotation."""
    for arg in typing.get_args(annotation)[::-1] or ():
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def reference() -> str:
    """The Markdown reference of every registered configuration file (docs/config.md)."""
    lines = ["# Configuration reference", "",
             "Generated from the models in the code (`python -m cutover.config > docs/config.md`);",
             "a test fails when this file is stale. Every file refuses keys it does not list.", ""]
    for kind in sorted(REGISTRY):
        model, where = REGISTRY[kind]
        lines += [f"## {kind}", "", f"Where: {where}", "",
                  (model.__doc__ or "").strip().splitlines()[0], ""]
        lines += _model_table(model, seen=set())
    return "\n".join(lines).rstrip() + "\n"


def _model_table(model: type[BaseModel], seen: set[type]) -> list[str]:
    seen.add(model)
    rows = [f"`{model.__name__}`:", "", "| key | type | default | meaning |", "|---|---|---|---|"]
    nested: list[type[BaseModel]] = []
    for name, field in model.model_fields.items():
        inner = _unwrap(field.annotation)
        is_model = isinstance(inner, type) and issubclass(inner, BaseModel)
        meaning = field.description or (_first_line(inner.__doc__) if is_model else "")
        rows.append(f"| `{field.alias or name}` | {_type_name(field.annotation)}"
                    f" | {_default_text(field)} | {meaning.replace('|', '/')} |")
        if is_model and inner not in seen:
            nested.append(inner)
    rows.append("")
    for inner in nested:
        if inner not in seen:
            rows += _model_table(inner, seen)
    return rows


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(its defaults)"
    return f"`{value!r}`"


def _type_name(annotation: Any) -> str:
    """A type as a reader of the TOML file thinks of it."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if isinstance(annotation, types.UnionType) or origin is typing.Union:
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + (
            " (optional)" if type(None) in args else "")
    if origin in (list, tuple):
        return f"list of ({_type_name(args[0])})" if args else "list"
    if origin is dict:
        return f"table of {_type_name(args[0])} = {_type_name(args[1])}" if args else "table"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"table `{annotation.__name__}`"
    if annotation is typing.Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _load_all_models() -> None:
    """Import the modules that declare models, so the reference is complete."""
    for name in CONFIG_MODULES:
        importlib.import_module(name)


#: Modules that register configuration models; a new one is added here.
CONFIG_MODULES: Final[tuple[str, ...]] = (
    "cutover.adapters.iso8583",
    "cutover.shadow.diff_rules",
    "cutover.stack.rules",
    "cutover.stack.settings",
    "cutover.sim.legacy_config",
    "cutover.stack.fx",
    "cutover.adapters.mapping",
    "cutover.adapters.columns",
    "cutover.adapters.valuemaps",
    "cutover.sim.feed_change",
    "cutover.values",
)


def write_reference() -> None:
    """Print the reference; run as ``python -m cutover.config``."""
    # Run as __main__, this file is a second module object: the models register with the
    # imported ``cutover.config``, so the reference is read from that one.
    registered._load_all_models()
    sys.stdout.write(registered.reference())


if __name__ == "__main__":
    write_reference()
