"""The local model registry: one folder per model version, a model card, and LATEST.

    REGISTRY/
      LATEST                  the newest version (one line)
      <version>/model.ubj     the fraud model in XGBoost's own format
      <version>/routing.json  the gateway success table learned from recorded outcomes
      <version>/card.json     the model card (data window, features, metrics, thresholds)

A version is the content hash of the model and routing bytes, so the same data and seed give
the same version, and a version names exactly one model. A version folder is written under a
temporary name and renamed, so a reader never sees half a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cutover.errors import ConfigError, InputError

LATEST: Final = "LATEST"
MODEL_FILE: Final = "model.ubj"
ROUTING_FILE: Final = "routing.json"
CARD_FILE: Final = "card.json"
VERSION_HEX: Final = 16
MODELS_ENV: Final = "CUTOVER_MODELS"
HINT: Final = "run `cutover train STORE --models DIR` first"


@dataclass(frozen=True)
class ModelCard:
    """A trained model's card: ``version`` and the whole card.json as ``data``."""

    version: str
    data: dict[str, Any]

    @property
    def metrics(self) -> dict[str, Any]:
        """Validation metrics: pr_auc, recall_at_1pct_fpr, brier, reliability, thresholds."""
        return self.data["metrics"]

    @property
    def features(self) -> list[str]:
        return self.data["features"]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


def content_version(model_bytes: bytes, routing_bytes: bytes) -> str:
    """The version of a model: a hash of exactly what decides."""
    digest = hashlib.sha256(model_bytes)
    digest.update(routing_bytes)
    return digest.hexdigest()[:VERSION_HEX]


def models_dir(models: str | Path | None) -> Path:
    """The registry folder: the argument, else $CUTOVER_MODELS, else ./models."""
    return Path(models or os.environ.get(MODELS_ENV) or "models")


def save(registry: Path, model_bytes: bytes, routing: dict[str, Any], card: dict[str, Any]) -> str:
    """Write a version folder and point LATEST at it; return the version."""
    routing_bytes = json.dumps(routing, sort_keys=True).encode()
    version = content_version(model_bytes, routing_bytes)
    card = {**card, "version": version}
    registry.mkdir(parents=True, exist_ok=True)
    final = registry / version
    temp = registry / f".{version}.tmp"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    (temp / MODEL_FILE).write_bytes(model_bytes)
    (temp / ROUTING_FILE).write_bytes(routing_bytes)
    (temp / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(temp, final)
    latest_tmp = registry / f".{LATEST}.tmp"
    latest_tmp.write_text(version + "\n")
    os.replace(latest_tmp, registry / LATEST)
    return version


def latest(registry: Path) -> str:
    """The version LATEST points at; InputError (exit 2) when there is no trained model."""
    path = registry / LATEST
    if not path.is_file():
        raise InputError(f"no model registry at {registry} (no {LATEST} file): {HINT}")
    return path.read_text().strip()


def version_dir(registry: Path, version: str | None) -> Path:
    """The folder of ``version`` (default: latest), checked to hold a complete model."""
    version = version or latest(registry)
    folder = registry / version
    missing = [f for f in (MODEL_FILE, ROUTING_FILE, CARD_FILE) if not (folder / f).is_file()]
    if missing:
        raise InputError(f"model {version} in {registry}: missing {missing}: {HINT}")
    return folder


def read_card(registry: Path, version: str | None = None) -> dict[str, Any]:
    """The model card of ``version`` (default: latest)."""
    path = version_dir(registry, version) / CARD_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable model card: {exc}") from exc


def list_cards(registry: Path) -> list[dict[str, Any]]:
    """Every model card in the registry, oldest training first."""
    if not registry.is_dir():
        raise InputError(f"no model registry at {registry}: {HINT}")
    cards = [read_card(registry, p.name) for p in registry.iterdir()
             if p.is_dir() and not p.name.startswith(".") and (p / CARD_FILE).is_file()]
    return sorted(cards, key=lambda c: (c.get("trained_at", ""), c["version"]))
