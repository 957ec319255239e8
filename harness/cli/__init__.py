"""The promptvcr command and its subcommands (status, doctor, init, scan).

``main`` is loaded on first use: the pytest plugin imports this folder's remedy phraser (``_remedies``) and must not
pay for the whole command line (every subcommand's imports) at each pytest start.
"""

from typing import Any

__all__ = ["main"]


def __getattr__(name: str) -> Any:
    if name == "main":
        from ._main import main

        return main
    raise AttributeError(f"module 'harness.cli' has no attribute {name!r}")
