"""The "Start here" tab's layout: a guided lesson in eight steps, each with one button that runs
its step (:mod:`.views`) on a bundled example; ``?step=3`` opens a step."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from explorer.ui import availability
from explorer.ui.components import ImageOut, listen
from explorer.ui.context import TabContext
from explorer.ui.lesson import views as lt
from explorer.ui.lesson.handlers import (
    TAB_ID,
    _handler,
    about_from_step,
    lesson_state,
    on_load,
    runs_on,
)

INTRO = """
**A guided tour in eight steps.** Open a step, press its button, and read *what to notice* —
written from the numbers you just got, naming the model that produced them. Everything runs on
the bundled examples; the other tabs let you do the same with your own pictures. Link a class
straight to a step with `?step=3` at the end of the address.
"""


def build(ctx: TabContext) -> SimpleNamespace:
    """The lesson tab; ``demo.load`` reads ``?step=`` and opens that step in the tab bar.
    Returns the session's lesson state (model and folder) and the line naming the model, which
    follow a scanned folder (wired by the app)."""
    demo, tabs = ctx.demo, ctx.tabs
    accordions = []
    with gr.Tab("Start here", id=TAB_ID):
        notice = availability.panel("lesson", ctx.folder0 or None)
        ctx.notices.append(notice)
        gr.Markdown(INTRO)
        state0 = lesson_state(availability.pick_vae(ctx.default, ctx.folder0 or None), ctx.folder0)
        state = gr.State(state0)
        line = gr.Markdown(runs_on(state0), elem_id="lesson-model")
        api = gr.Button(visible=False)  # the API endpoints' trigger (see components.listen)
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
                note = gr.Markdown(elem_classes="lesson-notice", elem_id=f"lesson-note-{n}")
                # a failure stays where the result would be; the API endpoint raises
                dep = listen(
                    btn.click,
                    api,
                    _handler(n),
                    [state],
                    [*outputs, note],
                    api_name=f"lesson_{n}",
                    slot=len(outputs),
                )
                if n == 7 and ctx.about is not None:  # About states what step 7 measured
                    dep.then(about_from_step, [outputs[0], state], [ctx.about], api_name=False)
    demo.load(on_load, None, [tabs, *accordions], api_name=False)
    return SimpleNamespace(state=state, line=line, notice=notice)
