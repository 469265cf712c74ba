"""The "Start here" tab's layout: a guided lesson in eight steps, each with one button that runs
its step (:mod:`.views`) on a bundled example; ``?step=3`` opens a step."""

from __future__ import annotations

import gradio as gr

from explorer.ui.components import ImageOut
from explorer.ui.context import TabContext
from explorer.ui.lesson import views as lt
from explorer.ui.lesson.handlers import TAB_ID, _handler, on_load

INTRO = """
**A guided tour in eight steps.** Open a step, press its button, and read *what to notice* —
written from the numbers you just got. Everything runs on the bundled examples and the app's
default VAE; the other tabs let you do the same with your own pictures. Link a class straight to
a step with `?step=3` at the end of the address.
"""


def build(ctx: TabContext) -> None:
    """The lesson tab; ``demo.load`` reads ``?step=`` and opens that step in the tab bar."""
    default, folder, demo, tabs = ctx.default, ctx.folder0, ctx.demo, ctx.tabs
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
