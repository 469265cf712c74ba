"""The presenter view: the lesson one step per screen, in type that reads from the back of a
room at 1920×1080 projected, with Previous / Next and nothing else on the page (no notices, no
tabs, no side panels). ``?present=1`` (with ``&step=N``) opens it, and so does the *Presenter
view* button on *Start here*.

Each screen has the step's title and text, its question with the choices, its button, and the
result, which fills the width (image or figure about 460 px high, the table beside it) with
the answer its numbers support and the *what to notice* line below; the text folds away once
the result is in.
The steps run through the same handlers as the tab (same session, same model, same class
record, same shared results).

Minimum sizes (:data:`FONT_PX`): nothing on a screen is under 28 px.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from explorer.ui import links
from explorer.ui.components import listen
from explorer.ui.lesson import views as lt
from explorer.ui.lesson.handlers import PRESENT_HEIGHT, _handler
from explorer.ui.lesson.layout import prediction_radio, step_outputs

FONT_PX = {  # the smallest size of each kind of text on a presenter screen (CSS px)
    "step title": 60,
    "step text, question, what to notice, answer": 32,
    "choices, buttons, table cells, the step counter": 28,
    "figure titles (plotly)": 28,
    "figure axes and legends (plotly)": 28,
}

CSS = f"""
.gradio-container:has(#presenter:not(.hidden)) {{max-width: 100% !important;
  padding: 8px 28px !important}}
.gradio-container:has(#presenter:not(.hidden)) footer {{display: none !important}}
#presenter, #presenter * {{font-size: {FONT_PX["choices, buttons, table cells, the step counter"]}px}}
#presenter .presenter-title h2, #presenter .presenter-title h2 * {{
  font-size: {FONT_PX["step title"]}px !important; line-height: 1.1; margin: 4px 0 12px}}
#presenter .presenter-text, #presenter .presenter-text *, #presenter .presenter-notice,
#presenter .presenter-notice *, #presenter .presenter-choices legend,
#presenter .presenter-choices legend *, #presenter .presenter-choices > span,
#presenter .presenter-choices [data-testid="block-info"] {{
  font-size: {FONT_PX["step text, question, what to notice, answer"]}px !important;
  line-height: 1.3 !important}}
#presenter .presenter-choices label, #presenter .presenter-choices label *,
#presenter button, #presenter table, #presenter table *, #presenter .presenter-bar * {{
  font-size: {FONT_PX["choices, buttons, table cells, the step counter"]}px !important}}
#presenter table td, #presenter table th {{padding: 6px 10px !important}}
#presenter .presenter-bar {{align-items: center}}
#presenter .presenter-result img {{object-fit: contain}}
#presenter table td *, #presenter table th * {{white-space: normal !important;
  overflow-wrap: anywhere}}
#presenter {{gap: 10px !important}}
#presenter-style {{display: none !important}}
"""


def _bar_text(n: int, state: dict | None) -> str:
    model = (state or {}).get("model") or ""
    on = "" if n == 1 or lt.STEPS[n].button is None or not model else f" · on **{model}**"
    return f"Step {n} of {len(lt.STEPS)}{on}"


def build(lesson: SimpleNamespace) -> SimpleNamespace:
    """The presenter column (hidden until asked for), after the tabs. ``lesson``: what the
    lesson tab returned (its state, class record, presenter button, result components)."""
    gr.HTML(f"<style>{CSS}</style>", elem_id="presenter-style", padding=False)
    screens, texts = [], []
    with gr.Column(visible=False, elem_id="presenter") as column:
        current = gr.State(1)
        with gr.Row(elem_classes="presenter-bar"):
            prev = gr.Button("◀ Previous", elem_id="presenter-prev", scale=1)
            where = gr.Markdown(_bar_text(1, None), elem_id="presenter-where")
            nxt = gr.Button("Next ▶", variant="primary", elem_id="presenter-next", scale=1)
            leave = gr.Button("Leave presenter view", elem_id="presenter-leave", scale=1)
        for n, step in lt.STEPS.items():
            with gr.Column(
                visible=n == 1, elem_id=f"presenter-step-{n}", elem_classes="presenter-step"
            ) as screen:
                screens.append(screen)
                gr.Markdown(f"## Step {n}. {step.title}", elem_classes="presenter-title")
                with gr.Accordion("About this step", open=True) as about:
                    texts.append(about)
                    gr.Markdown(step.text, elem_classes="presenter-text")
                if step.button is None:
                    continue
                with gr.Row(equal_height=True):
                    guess = prediction_radio(n, elem_classes="presenter-choices", scale=4)
                    btn = gr.Button(step.button, variant="primary", scale=1)
                with gr.Row(elem_classes="presenter-result"):
                    outputs = step_outputs(step, PRESENT_HEIGHT)
                note = gr.Markdown(elem_classes="presenter-notice")
                lesson.results.extend([*outputs, note])  # cleared when the model changes
                listen(
                    btn.click,
                    None,
                    _handler(n, present=True),
                    [lesson.state, lesson.record, guess],
                    [*outputs, note, lesson.record],
                    slot=len(outputs),
                    cleared=[None] * (len(outputs) + 1) + [gr.skip()],
                ).then(lambda: gr.update(open=False), None, [about], api_name=False)

    def go(n: int, state: dict | None):
        n = min(max(int(n or 1), 1), len(lt.STEPS))
        return (n, _bar_text(n, state), *[gr.update(visible=k == n) for k in lt.STEPS])

    nav = [current, where, *screens]
    quiet = {"api_name": False, "show_progress": "hidden"}
    prev.click(lambda n, s: go(n - 1, s), [current, lesson.state], nav, **quiet)
    nxt.click(lambda n, s: go(n + 1, s), [current, lesson.state], nav, **quiet)
    return SimpleNamespace(column=column, leave=leave, go=go, nav=nav, current=current)


def wire(demo: gr.Blocks, page: list, lesson: SimpleNamespace, view: SimpleNamespace) -> None:
    """``?present=1`` on load, the *Presenter view* button and *Leave presenter view*: the
    presenter shown and ``page`` (the title, the tabs, About) hidden, or the reverse."""
    outputs = [*page, view.column, *view.nav]

    def shown(on: bool, n: int, state):
        return (
            *[gr.update(visible=not on) for _ in page],
            gr.update(visible=on),
            *view.go(n, state),
        )

    def on_load(state, request: gr.Request):
        link = links.from_request(request)
        if not link.present:
            return (gr.skip(),) * len(outputs)
        return shown(True, link.step or 1, state)

    quiet = {"api_name": False, "show_progress": "hidden"}
    demo.load(on_load, [lesson.state], outputs, **quiet)
    lesson.present.click(lambda n, s: shown(True, n, s), [view.current, lesson.state], outputs,
                         **quiet)  # fmt: skip
    view.leave.click(lambda n, s: shown(False, n, s), [view.current, lesson.state], outputs,
                     **quiet)  # fmt: skip
