"""The operator's terminal UI: Textual screens over read-only views of a run's stores.

``views`` is the headless half (plain functions over Parquet, SQLAlchemy and JSON, no Textual),
so every query the screens make can be tested and timed without a terminal. ``app`` and
``screens`` are the Textual half; they never touch a file or database on the UI thread.
"""
