"""The "Start here" tab: a guided lesson in eight steps, each with one button that runs the
matching computation on a bundled example (see :mod:`.lesson_text`) and says what to notice.
A teacher can link straight to a step with ``?step=3``."""

from __future__ import annotations

import gradio as gr

from ..gpu import ATLAS, LAB, gpu
from . import lesson_text as lt
from .common import ImageOut, progress_adapter, user_errors

TAB_ID = "lesson"
INTRO = """
**A guided tour in eight steps.** Open a step, press its button, and read *what to notice* —
written from the numbers you just got. Everything runs on the bundled examples and the app's
default VAE; the other tabs let you do the same with your own pictures. Link a class straight to
a step with `?step=3` at the end of the address.
"""


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

    run.__name__ = run.__qualname__ = f"lesson_{n}"  # named before wrapping: ZeroGPU sees it
    return gpu(ATLAS if n == 7 else LAB)(user_errors(f"Lesson step {n}")(run))


def on_load(request: gr.Request):
    """``?step=N`` -> that step open (the others closed) and this tab selected."""
    params = getattr(request, "query_params", None) or {}
    step = lt.parse_step(params.get("step")) if "step" in params else None
    if step is None:
        return (gr.update(), *[gr.update() for _ in lt.STEPS])
    return (gr.update(selected=TAB_ID), *[gr.update(open=n == step) for n in lt.STEPS])


def build(default: str, folder: str, demo: gr.Blocks, tabs: gr.Tabs) -> None:
    """The lesson tab; ``demo.load`` reads ``?step=`` and opens that step in ``tabs``."""
    accordions = []
    with gr.Tab("Start here", id=TAB_ID):
        gr.Markdown(INTRO)
        for n, step in lt.STEPS.items():
            with gr.Accordion(f"{n}. {step.title}", open=n == 1, elem_id=f"lesson-step-{n}") as acc:
                accordions.append(acc)
                gr.Markdown(step.text)
                if step.button is None:
                    continue
                btn = gr.Button(step.button, variant="primary", size="sm")
                outputs = []
                with gr.Row():
                    if "image" in step.shows:
                        outputs.append(
                            ImageOut(
                                label="result", show_label=False, format="png", height=260, scale=3
                            )
                        )
                    if "plot" in step.shows:
                        outputs.append(gr.Plot(show_label=False, scale=3))
                    if "table" in step.shows:
                        outputs.append(
                            gr.Dataframe(
                                headers=list(step.columns),
                                show_label=False,
                                interactive=False,
                                wrap=True,
                                scale=2,
                            )
                        )
                note = gr.Markdown(elem_classes="lesson-notice")
                btn.click(
                    _handler(n, default, folder or None),
                    None,
                    [*outputs, note],
                    api_name=f"lesson_{n}",
                )
    demo.load(on_load, None, [tabs, *accordions], api_name=False)
