"""Headless read-side queries the TUI screens run inside workers; nothing here imports Textual."""
