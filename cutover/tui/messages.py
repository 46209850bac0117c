"""Messages the app posts to its screens."""

from __future__ import annotations

from textual.message import Message


class RunChanged(Message):
    """Follow mode saw a new part or a rewritten JSON file in the run directory."""
