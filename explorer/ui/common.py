"""Shared UI pieces: the safe image input, user-facing errors, progress, static files."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import plotly

from .. import pipeline
from ..errors import ExplorerError

log = logging.getLogger("explorer")

STATIC = Path(__file__).resolve().parents[1] / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class SafeImage(gr.Image):
    """gr.Image whose upload is handed to our own loader untouched.

    Gradio's own preprocessing opens the file with Pillow before our code runs, so a corrupt or
    non-image upload would surface as a bare error; here every file reaches ``imaging.load_image``,
    which refuses it with a sentence that says what to do.
    """

    def get_block_name(self) -> str:
        return "image"

    def preprocess(self, payload):
        if (
            payload is not None
            and getattr(payload, "path", None)
            and not (payload.url and payload.url.startswith("data:"))
        ):
            return str(payload.path)
        try:
            return super().preprocess(payload)
        except Exception as exc:  # data: URLs from paste/webcam that Pillow cannot read
            raise gr.Error(
                f"That image could not be read ({exc}). Try a PNG or JPEG file."
            ) from exc


def user_errors(action: str) -> Callable:
    """Decorator: ExplorerError -> gr.Error with its sentence; anything else -> a logged, short gr.Error."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except ExplorerError as exc:
                raise gr.Error(str(exc)) from exc
            except Exception as exc:
                log.exception("%s failed", action)
                raise gr.Error(
                    f"{action} failed: {type(exc).__name__}: {exc}. Try another image, a smaller "
                    "resolution or another model."
                ) from exc

        return inner

    return wrap


def env_int(name: str, default: int) -> int:
    """A positive whole number from environment variable ``name``; unset or invalid: ``default``
    (an invalid value is logged, as the other ``EXPLORER_*`` limits are)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        log.warning("Ignoring %s=%r: must be a whole number >= 1; using %d.", name, raw, default)
        return default
    return value


def progress_adapter(progress: gr.Progress) -> pipeline.Progress:
    return lambda f, desc: progress(f, desc=desc)


def file_url(path: str) -> str:
    """The URL under which the app serves a file from one of its static folders."""
    return f"/gradio_api/file={path}"
