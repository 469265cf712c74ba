"""What every tab's ``build(ctx)`` is given: the demo, the tab bar, the models on offer, and the
components one tab shares with the others (the lab's models-folder box and its *Local checkpoints*
accordion, set once the lab is built)."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr


@dataclass
class TabContext:
    """The shared context of the tabs' ``build`` functions (one per demo)."""

    demo: gr.Blocks
    tabs: gr.Tabs
    names: list[str]  # the VAEs offered in every model list
    default: str  # the VAE every tab starts on
    folder0: str  # the models folder the app started with ("" for none)
    examples: list[list[str]] = field(default_factory=list)  # the lab's example images
    folder: gr.Textbox | None = None  # the lab's models-folder box (set by the lab's build)
    local: gr.Accordion | None = None  # the lab's Local checkpoints accordion (likewise)
    api: gr.Button | None = None  # the hidden trigger of the API endpoints (components.listen)
