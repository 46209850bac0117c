"""One module per screen of the TUI; each loads its data in a worker and only renders."""
