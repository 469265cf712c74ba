"""How long work reports how far it is: a callable ``(fraction in [0, 1], description)``."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "no_progress"]

Progress = Callable[[float, str], None]
"""``progress(fraction in [0, 1], description)``: how long work reports how far it is."""


def no_progress(_fraction: float, _description: str) -> None:
    """The :data:`Progress` that reports nothing."""
