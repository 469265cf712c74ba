"""The lesson tab's handlers: one per runnable step (on the lesson's model and models folder,
kept in the session), the page load that reads ``?step=``, and the line naming the model."""

from __future__ import annotations

import gradio as gr

from explorer.models import registry
from explorer.ui.components import progress_adapter, user_errors
from explorer.ui.lesson import steps as lesson_steps
from explorer.ui.lesson import views as lt
from explorer.ui.pricing import lesson_price, priced

TAB_ID = "lesson"


def lesson_state(model: str, folder: str | None) -> dict:
    """What the steps run on: ``{"model": VAE name, "folder": models folder or ""}``."""
    return {"model": model, "folder": folder or ""}


def runs_on(state: dict) -> str:
    """The line above the steps naming the model they run on, and whether it runs here."""
    model, folder = state["model"], state["folder"] or None
    if registry.is_usable(model, folder):
        return (
            f"The steps run on **{model}**, the first VAE that works here without a download; "
            "each result names it. *Scan folder* in the VAE lab's *Local checkpoints* switches "
            "the lesson to a local checkpoint."
        )
    return (
        f"The steps would run on **{model}**, which is not downloaded: each step says so where "
        "its result would be. Scan a folder of local checkpoints in the VAE lab (*Local "
        "checkpoints*), or run `python -m explorer download` once with internet."
    )


def _handler(n: int):
    def run(state, progress=gr.Progress()):
        state = state or {}
        model = state.get("model") or registry.default_vae()
        r = lt.run_step(n, model, state.get("folder") or None, progress_adapter(progress))
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
    return priced(lesson_price(n))(user_errors(f"Lesson step {n}")(run))


def about_from_step(table, state):
    """After step 7: About's measured paragraph from the step's table (unchanged when the step
    failed and its table is empty)."""
    if table is None or len(table) == 0 or "knn5" not in getattr(table, "columns", ()):
        return gr.skip()
    table = table.astype({"knn5": float, "chance": float})
    return lesson_steps.about_measured(table, (state or {}).get("model", "the VAE"))


def on_load(request: gr.Request):
    """``?step=N`` -> that step open (the others closed) and this tab selected."""
    params = getattr(request, "query_params", None) or {}
    step = lt.parse_step(params.get("step")) if "step" in params else None
    if step is None:
        return (gr.update(), *[gr.update() for _ in lt.STEPS])
    return (gr.update(selected=TAB_ID), *[gr.update(open=n == step) for n in lt.STEPS])
