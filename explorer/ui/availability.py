"""What runs here without a download: the notice at the top of the lesson, the lab, the atlas and
the perturbations (which models are usable now, how to get the rest, one click to the *Local
checkpoints* section), the usable-first choice of Compare's second VAE, and the model a list
shows once a folder is scanned. Everything is read from the registry's
``is_usable`` (registered in code, local files, or in the Hugging Face cache; no network). On a
class pack the cache is the pack's, so the notice names the pack's command instead."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import gradio as gr

from explorer.core import pack, public
from explorer.core.safe_text import escape_markdown
from explorer.models import registry

Need = Literal["lesson", "lab", "atlas", "perturb"]
NEEDS_EMBEDDERS = ("atlas", "perturb")  # the places that also use CLIP and DINOv2

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
    return vaes + (registry.default_embedders() if need in NEEDS_EMBEDDERS else [])


def _code_list(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _pack_names(found: pack.Pack, missing: list[str]) -> str:
    """The --models list that builds the pack again with what it has and what is missing."""
    return ",".join(dict.fromkeys([*(m["name"] for m in found.models), *missing]))


def notice_markdown(need: Need, folder: str | None = None) -> str:
    """The notice's text, or "" when every model this place needs is usable now (or in public
    mode, where a visitor can neither download nor point at a folder).

    Once some VAE runs, one line: what is usable, what is not downloaded, the command. While
    none does: the full notice, with the command as a block and the local-checkpoint route."""
    if public.public_mode():
        return ""
    missing = [n for n in _needed(need) if not registry.is_usable(n, folder)]
    if not missing:
        return ""
    local = registry.local_models(folder)
    vaes = usable_vaes(folder)
    usable = [f"`{n}`" + (" (local checkpoint)" if n in local else "") for n in vaes]
    if need in NEEDS_EMBEDDERS:
        usable += [f"`{n}`" for n in registry.available_embedders() if registry.is_usable(n)]
    found = pack.active()
    if vaes and found is not None:  # the Hub is off and the cache is the pack's
        return (
            f"**Usable now, without the internet:** {', '.join(usable)}. **Not in the class "
            f"pack** ({escape_markdown(found.root.name)}): {_code_list(missing)} "
            f"(`{PACK_CMD} --models {_pack_names(found, missing)}` adds them, on a machine with "
            "internet)."
        )
    if vaes:
        return (
            f"**Usable now, without the internet:** {', '.join(usable)}. **Not downloaded "
            f"yet:** {_code_list(missing)} (`{DOWNLOAD_CMD}` fetches them, once, with internet)."
        )
    what = "VAE" if need in ("lab", "lesson") else "model"
    lines = [
        f"**No {what} can run yet:** none is downloaded and no local checkpoint folder is set."
        + (f" Usable: {', '.join(usable)}." if usable else "")
    ]
    if found is not None:  # the Hub is off and the cache is the pack's: a download cannot help
        lines.append(
            f"**Not in the class pack** ({escape_markdown(found.root.name)}): "
            f"{_code_list(missing)}. Add them by "
            "building the pack again on a machine with internet, e.g."
        )
        return (
            "\n\n".join(lines)
            + f"\n\n```\n{PACK_CMD} --models {_pack_names(found, missing)}\n```\n"
        )
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


@dataclass
class Notice:
    """One place's notice: its group (hidden when there is nothing to say), its text and the
    button that opens *Local checkpoints* (shown only while no VAE runs)."""

    need: Need
    group: gr.Group
    text: gr.Markdown
    button: gr.Button


def _collapsed(need: Need, folder: str | None) -> bool:
    return bool(usable_vaes(folder)) or public.public_mode()


def panel(need: Need, folder: str | None = None) -> Notice:
    """The notice (inside the open layout), hidden when it has nothing to say; updated by
    :func:`notice_updates` when the models change (a scanned folder)."""
    text = notice_markdown(need, folder)
    with gr.Group(
        elem_id=f"offline-notice-{need}", elem_classes="offline-notice", visible=bool(text)
    ) as group:
        md = gr.Markdown(text, elem_id=f"offline-notice-{need}-text", padding=True)
        with gr.Row():
            button = gr.Button(
                "Open “Local checkpoints”",
                variant="primary",
                size="sm",
                scale=0,
                min_width=240,
                elem_id=f"offline-notice-{need}-open",
                visible=not _collapsed(need, folder),
            )
    return Notice(need, group, md, button)


def notice_updates(need: Need, folder: str | None = None) -> tuple:
    """(group, text, button) updates of :func:`panel`'s notice for the models usable now."""
    text = notice_markdown(need, folder)
    return (
        gr.update(visible=bool(text)),
        gr.update(value=text),
        gr.update(visible=not _collapsed(need, folder)),
    )


def scanned_folder(folder: str | None) -> str | None:
    """A models-folder box's value -> the folder to read models from (None: none set), or
    raises ValueError for a path that is no folder (nothing should change then)."""
    folder = (folder or "").strip()
    if not folder:
        return None
    if not os.path.isdir(os.path.expanduser(folder)):
        raise ValueError(folder)
    return folder


def pick_vae(current: str | None, folder: str | None) -> str:
    """The VAE a model list shows for ``folder``: ``current`` while it runs, else the first
    usable one (local checkpoints first), else ``current``."""
    if current and registry.is_usable(current, folder):
        return current
    local = [n for n in registry.local_models(folder) if registry.is_usable(n, folder)]
    return next(iter(local + usable_vaes(folder)), current or registry.default_vae(folder))


def open_local(*_) -> tuple:
    """The button's event: the lab tab selected and *Local checkpoints* opened."""
    return gr.Tabs(selected="lab"), gr.Accordion(open=True)


def wire(notice: Notice | gr.Button | None, tabs: gr.Tabs, local: gr.Accordion) -> None:
    """Connect a notice's button: open the section, then focus its folder box."""
    button = notice.button if isinstance(notice, Notice) else notice
    if button is None:
        return
    button.click(open_local, None, [tabs, local], api_name=False, queue=False).then(
        None, None, None, js=FOCUS_FOLDER_JS
    )
