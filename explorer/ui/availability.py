"""What runs here without a download: the notice at the top of the lab and the atlas (which models
are usable now, how to get the rest, one click to the *Local checkpoints* section) and the
usable-first choice of Compare's second VAE. Everything is read from the registry's
``is_usable`` (registered in code, local files, or in the Hugging Face cache; no network). On a
class pack the cache is the pack's, so the notice names the pack's command instead."""

from __future__ import annotations

from typing import Literal

import gradio as gr

from explorer.core import pack, public
from explorer.core.safe_text import escape_markdown
from explorer.models import registry

Need = Literal["lab", "atlas"]

LOCAL_ID = "local-checkpoints"
FOLDER_ID = "models-folder"
DOWNLOAD_CMD = "python -m explorer download"
PACK_CMD = "python -m explorer classpack --out DIR"

# Once the accordion has opened (its content is drawn a moment after the update arrives): bring
# the folder box into view and put the cursor in it.
FOCUS_FOLDER_JS = f"""() => {{
  let tries = 0;
  const go = () => {{
    const box = document.querySelector('#{FOLDER_ID} textarea, #{FOLDER_ID} input');
    if (box && box.offsetParent) {{
      box.scrollIntoView({{block: 'center', behavior: 'smooth'}});
      box.focus({{preventScroll: true}});
    }} else if (tries++ < 40) setTimeout(go, 50);
  }};
  go();
}}"""


def usable_vaes(folder: str | None = None) -> list[str]:
    """The VAEs listed for ``folder`` that load without a download, in the list's order."""
    return [n for n in registry.available_models(folder) if registry.is_usable(n, folder)]


def second_vae(names: list[str], first: str, folder: str | None = None) -> str:
    """Compare's second VAE: the first usable model other than ``first``; ``first`` when no
    other one is usable (a comparison with itself runs, one with a missing model does not)."""
    return next(
        (n for n in names if n != first and registry.is_usable(n, folder)),
        first,
    )


def _needed(need: Need) -> list[str]:
    """What `python -m explorer download` fetches that this place of the app uses."""
    vaes = [s.name for s in registry.REGISTRY.values() if s.default]
    return vaes + (registry.default_embedders() if need == "atlas" else [])


def _code_list(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def notice_markdown(need: Need, folder: str | None = None) -> str:
    """The notice's text, or "" when every model this place needs is usable now (or in public
    mode, where a visitor can neither download nor point at a folder)."""
    if public.public_mode():
        return ""
    missing = [n for n in _needed(need) if not registry.is_usable(n, folder)]
    if not missing:
        return ""
    local = registry.local_models(folder)
    usable = [f"`{n}`" + (" (local checkpoint)" if n in local else "") for n in usable_vaes(folder)]
    if need == "atlas":
        usable += [f"`{n}`" for n in registry.available_embedders() if registry.is_usable(n)]
    what = "VAE" if need == "lab" else "model"
    lines = [
        f"**Usable now, without the internet:** {', '.join(usable)}."
        if usable
        else f"**No {what} can run yet:** none is downloaded and no local checkpoint folder is set."
    ]
    found = pack.active()
    if found is not None:  # the Hub is off and the cache is the pack's: a download cannot help
        lines.append(
            f"**Not in the class pack** ({escape_markdown(found.root.name)}): "
            f"{_code_list(missing)}. Add them by "
            "building the pack again on a machine with internet, e.g."
        )
        names = ",".join(dict.fromkeys([*(m["name"] for m in found.models), *missing]))
        return "\n\n".join(lines) + f"\n\n```\n{PACK_CMD} --models {names}\n```\n"
    lines.append(
        f"**Not downloaded yet:** {_code_list(missing)}. They download by themselves on first use "
        "when the Hugging Face Hub can be reached; offline, fetch them once on a machine with "
        "internet (into the same Hugging Face cache) with"
    )
    text = "\n\n".join(lines) + f"\n\n```\n{DOWNLOAD_CMD}\n```\n\n"
    return text + (
        "Or use a folder of TAESD-family checkpoints (`NAME_encoder.pth` / `NAME_decoder.pth`, "
        "e.g. ComfyUI's `vae_approx`): those run offline."
    )


def panel(need: Need, folder: str | None = None) -> gr.Button | None:
    """The notice (inside the open layout), or nothing when it has nothing to say; returns the
    button that opens the local-checkpoint section."""
    text = notice_markdown(need, folder)
    if not text:
        return None
    with gr.Group(elem_id=f"offline-notice-{need}", elem_classes="offline-notice"):
        gr.Markdown(text, elem_id=f"offline-notice-{need}-text", padding=True)
        with gr.Row():
            return gr.Button(
                "Open “Local checkpoints”",
                variant="primary",
                size="sm",
                scale=0,
                min_width=240,
                elem_id=f"offline-notice-{need}-open",
            )


def open_local(*_) -> tuple:
    """The button's event: the lab tab selected and *Local checkpoints* opened."""
    return gr.Tabs(selected="lab"), gr.Accordion(open=True)


def wire(button: gr.Button | None, tabs: gr.Tabs, local: gr.Accordion) -> None:
    """Connect a notice's button: open the section, then focus its folder box."""
    if button is None:
        return
    button.click(open_local, None, [tabs, local], api_name=False, queue=False).then(
        None, None, None, js=FOCUS_FOLDER_JS
    )
