"""User-facing errors: every message is a sentence that says what to do next."""

from __future__ import annotations


class ExplorerError(Exception):
    """An error whose message is meant for the user (shown as ``gr.Error`` in the UI)."""


class BadImageError(ExplorerError):
    """The input could not be read as an image, or is outside the accepted limits.

    ``str(exc)`` is the sentence for the user; ``short`` is the few words an image set's summary
    shows beside a skipped file's name (``"damaged or incomplete"``), given where the error is
    raised. Without one the sentence itself is used.
    """

    def __init__(self, message: str = "", short: str = ""):
        super().__init__(message)
        self.short = short or message


class UnknownModelError(ExplorerError, ValueError):
    """A model name is neither in the registry, a hub id, nor a local checkpoint."""


class ModelUnavailableError(ExplorerError):
    """A model's weights are not cached and cannot be downloaded (offline), or failed to load."""
