"""The lesson tab's handlers: one per runnable step (on the lesson's model and models folder,
kept in the session; results shared between sessions through :mod:`.results`), the model
selector, *Save this class* and the reopening of a saved one, the page load that reads
``?tab=`` and ``?step=``, and the line naming the model."""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go
from gradio.utils import get_upload_folder

from explorer.core.errors import ExplorerError
from explorer.models import registry
from explorer.ui import links
from explorer.ui.components import cache_image_atomically, progress_adapter, user_errors
from explorer.ui.lesson import handout, results
from explorer.ui.lesson import questions as qs
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
            f"The steps run on **{model}** (choose another above); each result names it. *Scan "
            "folder* in the VAE lab's *Local checkpoints* adds local checkpoints to the list."
        )
    return (
        f"The steps would run on **{model}**, which is not downloaded: each step says so where "
        "its result would be. Choose another model above, scan a folder of local checkpoints in "
        "the VAE lab (*Local checkpoints*), or run `python -m explorer download` once with "
        "internet."
    )


def _compute(n: int):
    """Step ``n``'s computation: (model, folder) -> its StepResult (arrays and pictures; it
    writes no module state). It runs in the main process like every handler; its GPU work, on
    ZeroGPU, goes through :mod:`explorer.spaces.gpu_calls` as everywhere else."""

    def compute(model, folder, progress=gr.Progress()):
        return lt.run_step(n, model, folder, progress_adapter(progress))

    compute.__name__ = compute.__qualname__ = f"lesson_{n}"
    return compute


COMPUTE = {n: _compute(n) for n in lt.RUNNABLE}


def others(n: int, model: str) -> dict[str, qs.Answer]:
    """What the other models whose step-``n`` results are stored here answered."""
    if n == 1:  # the playground's models, whatever the lesson's model is
        return {}
    return {k[1]: qs.answer(n, r) for k, r in results.stored(n).items() if k[1] != model}


def run_and_record(n: int, state: dict | None, prediction=None, progress=None):
    """Step ``n`` for a session (main process): the shared result, the reveal of its answer
    (markdown) and the :class:`~.handout.Ran` the class record keeps."""
    state = state or {}
    model = state.get("model") or registry.default_vae()
    folder = state.get("folder") or None
    k = results.key(n, model, folder)
    r = results.shared(k, lambda: COMPUTE[n](model, folder, progress or gr.Progress()))
    got = qs.answer(n, r)
    answer = qs.reveal(n, got, model, prediction, others(n, model))
    guess = qs.parse_prediction(n, prediction)
    ran = handout.Ran(
        n,
        "" if n == 1 else model,
        k[3],
        r,
        prediction=None if guess is None else qs.choice_label(n, guess),
        answer=got,
    )
    return r, answer, ran


PRESENT_HEIGHT = 460  # px: a result's height in the presenter view


def present_plot(fig):
    """A copy of a step's figure in projector sizes (the stored one is shared, left as it is)."""
    if fig is None:
        return None
    big = go.Figure(fig)
    big.update_layout(
        font={"size": 28}, title_font_size=32, height=PRESENT_HEIGHT, margin={"t": 80}
    )
    return big


_png: dict[int, tuple[weakref.ref, str]] = {}  # id(result) -> (the result, its image's PNG)
_png_lock = threading.Lock()


def served(result: lesson_steps.StepResult) -> str | None:
    """A stored result's picture as a PNG in Gradio's cache, encoded once for every session
    that is shown it (again if Gradio's cache sweep removed the file)."""
    if result.image is None:
        return None
    with _png_lock:
        ref, path = _png.get(id(result), (None, ""))
    if ref is None or ref() is not result or not Path(path).exists():
        path = cache_image_atomically(result.image, get_upload_folder(), "png")
        with _png_lock:
            for k in [k for k, (r, _) in _png.items() if r() is None]:
                del _png[k]  # results the store has dropped
            _png[id(result)] = (weakref.ref(result), path)
    return path


def _handler(n: int, present: bool = False):
    def run(state, record, prediction=None, progress=gr.Progress()):
        r, answer, ran = run_and_record(n, state, prediction, progress)
        # the notice, then the answer its numbers support; on a projector the answer first
        note = f"{answer}\n\n{r.notice}" if present else f"{r.notice}\n\n{answer}"
        shows = lt.STEPS[n].shows
        out = []
        if "image" in shows:
            out.append(served(r))
        if "plot" in shows:
            out.append(present_plot(r.plot) if present else r.plot)
        if "table" in shows:
            out.append(r.table.copy())
        return (*out, note, {**(record or {}), n: ran})

    run.__name__ = run.__qualname__ = f"lesson_{n}"
    return priced(lesson_price(n))(user_errors(f"Lesson step {n}")(run))


def about_from_step(table, state):
    """After step 7: About's measured paragraph from the step's table (unchanged when the step
    failed and its table is empty)."""
    if table is None or len(table) == 0 or "knn5" not in getattr(table, "columns", ()):
        return gr.skip()
    table = table.astype({"knn5": float, "chance": float})
    return lesson_steps.about_measured(table, (state or {}).get("model", "the VAE"))


@user_errors("Choosing the lesson's model")
def on_model(model, state):
    """The model selector -> the lesson's state (same folder) and the line naming it."""
    if not model:
        raise ExplorerError("Choose a VAE for the lesson from the list.")
    new = lesson_state(str(model), (state or {}).get("folder") or None)
    return new, runs_on(new)


@user_errors("Saving the class")
def on_save(state, record):
    """*Save this class* -> the handout file of the steps this session ran, and a line."""
    if not record:
        raise ExplorerError(
            "Run at least one step first: the saved class holds the steps this session ran."
        )
    path = handout.write(record, (state or {}).get("model") or registry.default_vae())
    size = path.stat().st_size
    return str(path), (
        f"Saved {len(record)} step(s) as **{path.name}** ({size / 2**20:.1f} MB, within the "
        f"{handout.CAP_BYTES / 2**20:.0f} MB cap): one HTML file that opens offline and prints "
        "one step per page."
    )


@user_errors("Opening the saved class")
def on_open(file):
    """An uploaded handout -> the read-only record shown in the app, and a line."""
    path = file if isinstance(file, str) else getattr(file, "name", None)
    if not path:
        raise ExplorerError("Choose a saved class (.html) to open.")
    record, figures = handout.read(path)
    ran = [s for s in record["steps"] if s.get("ran")]
    return handout.reopened_html(record, figures), (
        f"A class saved on {record['date']} ({len(ran)} step(s) run), shown read-only below."
    )


def on_load(request: gr.Request):
    """``?tab=atlas`` -> that tab selected; ``?step=N`` -> that step open (the others closed)
    and, without ``tab``, this tab selected; ``?set=`` alone selects the atlas."""
    link = links.parse(getattr(request, "query_params", None) or {})
    implied = "atlas" if link.set or link.unknown_set else TAB_ID if link.step else None
    tab = link.tab or implied
    tabs = gr.update(selected=tab) if tab else gr.update()
    if link.step is None:
        return (tabs, *[gr.update() for _ in lt.STEPS])
    return (tabs, *[gr.update(open=n == link.step) for n in lt.STEPS])
