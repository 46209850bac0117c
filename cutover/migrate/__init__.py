"""Cutover plans and gates: move traffic from legacy to the candidate phase by phase, on evidence.

``plan`` reads and validates plan files, ``policy`` and ``gate`` judge a replay report (pure
functions), ``stats`` gives the Wilson bounds they judge on, ``cohort`` splits traffic stickily
and monotonically, ``state`` keeps the append-only phase history in SQL, and ``outputs`` renders
gate results as JUnit XML and Markdown. Nothing here imports the CLI or the TUI.
"""
