"""The promptvcr command and its subcommands (status, doctor, init, scan)."""

from ._main import main

__all__ = ["main"]
