"""looptui: supervise many AI coding agents at once."""

__version__ = "0.1.0"
