"""What an atlas opener is asked, as one object: the spaces ticked and their models, the 2-D
projection, the models folder and the UNet's model and timestep.

Gradio passes an event's inputs positionally and names an endpoint's API parameters after its
function's parameters, so every opener keeps the same public parameters (``checked, vae_model,
clip_model, dino_model, vit_model, method, folder, unet_model, unet_t``). :func:`opener` gives a
handler written as ``fn(*leading, req, progress)`` exactly that signature and builds the
:class:`OpenRequest` once from those values.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace

import gradio as gr

from explorer.core.errors import ExplorerError
from explorer.spaces import baselines, unet
from explorer.ui.components import check_space_refs, space_refs

CONTROL_CHOICES = {
    "Pixels (control)": "pixels",
    "Colour (control)": "colour",
    "Texture (control)": "texture",
}
"""The weight-free controls, as the tab names them: what pixels, palette and edges alone give."""

FAMILY_CHOICES = {
    "VAE": "vae",
    "CLIP": "clip",
    "DINOv2": "dino",
    "ViT": "vit",
    "UNet bottleneck": "unet",  # offered only where a UNet space is usable (see layout.build)
    **CONTROL_CHOICES,
}

FIELDS = (
    "checked",
    "vae_model",
    "clip_model",
    "dino_model",
    "vit_model",
    "method",
    "folder",
    "unet_model",
    "unet_t",
)
"""The openers' shared API parameters, in the order the atlas tab sends them."""


@dataclass(frozen=True)
class OpenRequest:
    """One atlas open request: ``checked`` holds the ticked family labels (``"CLIP"``, …)."""

    checked: tuple[str, ...] = ()
    vae_model: str | None = None
    clip_model: str | None = None
    dino_model: str | None = None
    vit_model: str | None = None
    method: str = "umap"
    folder: str | None = None
    unet_model: str | None = None
    unet_t: int | float | str | None = None

    def spaces(self) -> list[str]:
        """The ticked families as ``family:model`` space refs, in the tab's order."""
        chosen = {
            "vae": self.vae_model,
            "clip": self.clip_model,
            "dino": self.dino_model,
            "vit": self.vit_model,
            **baselines.MODELS,  # each control has one model
        }
        if "UNet bottleneck" in self.checked:
            if not self.unet_model:
                raise ExplorerError(
                    "No UNet space is available here: run `python -m explorer download "
                    "sd15-unet` once with internet, or untick UNet bottleneck."
                )
            chosen["unet"] = unet.model_ref(
                self.unet_model, int(self.unet_t or unet.DEFAULT_TIMESTEP)
            )
        return space_refs(list(self.checked), FAMILY_CHOICES, chosen)

    def checked_for_public(self) -> OpenRequest:
        """Public mode's rules, applied before any image is read: the folder must be the
        operator's own and every model a listed one; at least one space. Returns the request
        with the folder the rules allow."""
        refs = self.spaces()
        folder = check_space_refs([], self.folder)  # the folder first
        if not refs:
            raise ExplorerError(
                "Tick at least one space (VAE, CLIP, DINOv2, ViT or a control such as Pixels) "
                "first."
            )
        check_space_refs(refs, folder)
        return replace(self, folder=folder)


def opener(*leading: str) -> Callable:
    """Decorator: ``fn(*leading, req, progress)`` as a handler whose signature is ``(*leading,
    checked, vae_model, …, unet_t=None, progress=gr.Progress())``, the one Gradio reads for
    the inputs and the API page; the values after ``leading`` become one :class:`OpenRequest`."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def handler(*args, progress=None, **kwargs):
            bound = handler.__signature__.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            progress = values.pop("progress", None) if progress is None else progress
            head = [values.pop(name) for name in leading]
            checked = values.pop("checked") or ()
            req = OpenRequest(checked=tuple(checked), **values)
            return fn(*head, req, progress)

        pos = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params = [inspect.Parameter(n, pos) for n in (*leading, *FIELDS[:7])]
        params += [inspect.Parameter(n, pos, default=None) for n in FIELDS[7:]]
        params.append(inspect.Parameter("progress", pos, default=gr.Progress()))
        handler.__signature__ = inspect.Signature(params)
        del handler.__wrapped__  # inspect.signature reads __signature__, not fn's
        return handler

    return wrap
