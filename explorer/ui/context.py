"""What every tab's ``build(ctx)`` is given: the demo, the tab bar, the models on offer, and the
components one tab shares with the others (the lab's models-folder box and its *Local checkpoints*
accordion, set once the lab is built), and what follows a scanned folder (each tab's notice and
VAE lists)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    # what follows the models usable now (a scanned folder): each tab adds its own
    notices: list[Any] = field(default_factory=list)  # availability.Notice, one per tab
    vae_lists: list[gr.Dropdown] = field(default_factory=list)  # VAE lists outside the lab
    about: gr.Markdown | None = None  # About's measured paragraph (rendered below the tabs)
