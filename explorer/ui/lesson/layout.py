"""The "Start here" tab's layout: a guided lesson in eight steps, each with a question to
predict, then one button that runs its step (:mod:`.views`) on a bundled example; a model
selector; *Save this class* and the reopening of a saved one; ``?step=3`` opens a step."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from explorer.ui import availability
from explorer.ui.components import ImageOut, listen
from explorer.ui.context import TabContext
from explorer.ui.lesson import handout
from explorer.ui.lesson import questions as qs
from explorer.ui.lesson import views as lt
from explorer.ui.lesson.handlers import (
    TAB_ID,
    _handler,
    about_from_step,
    lesson_state,
    on_load,
    on_model,
    on_open,
    on_save,
    runs_on,
)

INTRO = """
**A guided tour in eight steps.** Open a step, ask the class its question, press the button, and
read *what to notice* — written from the numbers you just got, naming the model that produced
them, and ending with the answer those numbers support. Everything runs on the bundled examples;
the other tabs let you do the same with your own pictures. Link a class straight to a step with
`?step=3` at the end of the address; `?present=1` opens the presenter view.
"""

SAVE_NOTE = f"""
*Save this class* writes one HTML file of the steps this session ran: each step's figure, table,
numbers, question and answer, the models and their versions, the date, and the answer key. It
opens offline, prints one step per page, and stays under {handout.CAP_BYTES // 2**20} MB.
`python -m explorer lesson --out class.html` writes the same file for every step before class.
"""


def step_outputs(step: lt.Step, image_height: int = 260) -> list:
    """The components one step's result is shown in (inside an open row)."""
    outputs = []
    if "image" in step.shows:
        outputs.append(
            ImageOut(label="result", show_label=False, format="png", height=image_height, scale=3)
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
    return outputs


def prediction_radio(n: int, **kwargs) -> gr.Radio:
    """Step ``n``'s choices, shown before its button; the class's prediction (optional)."""
    q = qs.QUESTIONS[n]
    return gr.Radio(q.labels(), value=None, label=f"Predict first: {q.prompt}", **kwargs)


def build(ctx: TabContext) -> SimpleNamespace:
    """The lesson tab; ``demo.load`` reads ``?tab=`` / ``?step=`` and opens that step in the
    tab bar. Returns the session's lesson state (model and folder), the class record (the steps
    run), the line naming the model, the model selector, the presenter toggle and every step's
    result components (cleared when the model changes)."""
    demo, tabs = ctx.demo, ctx.tabs
    accordions, parts = [], []
    with gr.Tab("Start here", id=TAB_ID):
        notice = availability.panel("lesson", ctx.folder0 or None)
        ctx.notices.append(notice)
        gr.Markdown(INTRO)
        state0 = lesson_state(availability.pick_vae(ctx.default, ctx.folder0 or None), ctx.folder0)
        state = gr.State(state0)
        record = gr.State({})  # step -> handout.Ran: what this session's class saw
        with gr.Row(equal_height=True):
            model = gr.Dropdown(
                ctx.names,
                value=state0["model"],
                label="The lesson's VAE",
                scale=3,
                elem_id="lesson-model-choice",
            )
            present = gr.Button("Presenter view", scale=1, elem_id="lesson-present")
        ctx.vae_lists.append(model)
        line = gr.Markdown(runs_on(state0), elem_id="lesson-model")
        api = gr.Button(visible=False)  # the API endpoints' trigger (see components.listen)
        for n, step in lt.STEPS.items():
            with gr.Accordion(f"{n}. {step.title}", open=n == 1, elem_id=f"lesson-step-{n}") as acc:
                accordions.append(acc)
                gr.Markdown(step.text)
                if step.button is None:
                    continue
                guess = prediction_radio(n, elem_id=f"lesson-guess-{n}")
                btn = gr.Button(step.button, variant="primary", size="sm")
                with gr.Row():
                    outputs = step_outputs(step)
                note = gr.Markdown(elem_classes="lesson-notice", elem_id=f"lesson-note-{n}")
                parts += [*outputs, note]
                # a failure stays where the result would be (the record kept); the API raises
                dep = listen(
                    btn.click,
                    api,
                    _handler(n),
                    [state, record, guess],
                    [*outputs, note, record],
                    api_name=f"lesson_{n}",
                    slot=len(outputs),
                    cleared=[None] * (len(outputs) + 1) + [gr.skip()],
                )
                if n == 7 and ctx.about is not None:  # About states what step 7 measured
                    dep.then(about_from_step, [outputs[0], state], [ctx.about], api_name=False)
        with gr.Accordion("Save this class, or reopen one", open=False, elem_id="lesson-save"):
            gr.Markdown(SAVE_NOTE)
            with gr.Row():
                save = gr.Button("Save this class", variant="primary", elem_id="lesson-save-btn")
                saved = gr.File(label="The class (HTML)", interactive=False)
            save_note = gr.Markdown(elem_id="lesson-save-note")
            upload = gr.File(
                label="Reopen a saved class (.html)",
                file_types=[".html"],
                type="filepath",
                elem_id="lesson-reopen",
            )
            reopen_note = gr.Markdown(elem_id="lesson-reopen-note")
            reopened = gr.HTML(elem_id="lesson-record")
    listen(save.click, api, on_save, [state, record], [saved, save_note], api_name="lesson_save",
           slot=1)  # fmt: skip
    listen(upload.upload, None, on_open, [upload], [reopened, reopen_note], slot=1)
    listen(
        model.input,
        api,
        on_model,
        [model, state],
        [state, line],
        api_name="lesson_model",
        slot=1,
        cleared=[gr.skip(), None],
    ).then(lambda: [None] * len(parts), None, parts, api_name=False, show_progress="hidden")
    demo.load(on_load, None, [tabs, *accordions], api_name=False)
    return SimpleNamespace(
        state=state,
        record=record,
        line=line,
        notice=notice,
        model=model,
        present=present,
        results=parts,
    )
