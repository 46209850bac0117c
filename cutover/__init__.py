"""cutover: move a payment backend off a legacy core onto a new stack, with evidence."""

__version__ = "0.1.0"
