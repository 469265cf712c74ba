"""The lesson tab's handlers: one per runnable step, and the page load that reads ``?step=``."""

from __future__ import annotations

import gradio as gr

from explorer.ui.components import progress_adapter, user_errors
from explorer.ui.lesson import views as lt

TAB_ID = "lesson"


def _handler(n: int, model: str, folder: str | None):
    def run(progress=gr.Progress()):
        r = lt.run_step(n, model, folder, progress_adapter(progress))
        shows = lt.STEPS[n].shows
        out = []
        if "image" in shows:
            out.append(r.image)
        if "plot" in shows:
            out.append(r.plot)
        if "table" in shows:
            out.append(r.table)
        return (*out, r.notice)

    run.__name__ = run.__qualname__ = f"lesson_{n}"
    return user_errors(f"Lesson step {n}")(run)


def on_load(request: gr.Request):
    """``?step=N`` -> that step open (the others closed) and this tab selected."""
    params = getattr(request, "query_params", None) or {}
    step = lt.parse_step(params.get("step")) if "step" in params else None
    if step is None:
        return (gr.update(), *[gr.update() for _ in lt.STEPS])
    return (gr.update(selected=TAB_ID), *[gr.update(open=n == step) for n in lt.STEPS])
