"""Public mode: the rules for an app that strangers can reach (a Hugging Face Space, a classroom).

On by default where ``SPACE_ID`` is set (Hugging Face Spaces set it), or with ``EXPLORER_PUBLIC=1``;
``EXPLORER_PUBLIC=0`` turns it off even on a Space. Read at call time, so tests can flip it.

In public mode:

* uploads are smaller (20 MB a file, 16 MP an image, 1,000 images or 500 MB unpacked a set) and
  the lab works at 512 px at most (an explicit ``EXPLORER_MAX_*`` variable still wins);
* no server paths: the models-folder box, folder scanning and saved-atlas folders are refused
  (the operator's own ``EXPLORER_MODELS_DIR`` still works);
* only registry models (and the operator's local checkpoints): no Hub ids, no paths;
* always, public or not: no ``trust_remote_code``, weights through safetensors or
  ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

from explorer.core import settings
from explorer.core.errors import ExplorerError


class PublicModeError(ExplorerError):
    """Something this public deployment does not allow."""


def public_mode() -> bool:
    """EXPLORER_PUBLIC=1/0 decides; otherwise on where SPACE_ID is set (a Hugging Face Space)."""
    return settings.get().public


def max_resolution() -> int:
    """The largest lab resolution: ``EXPLORER_MAX_RESOLUTION``, else 512 public / 1024 private."""
    return settings.get().max_resolution


def check_resolution(resolution: int) -> int:
    if int(resolution) > max_resolution():
        raise PublicModeError(
            f"This app works at {max_resolution()} px at most; choose a smaller resolution."
        )
    return int(resolution)


def check_folder(folder: str | None, allowed: str | None = None) -> str | None:
    """In public mode, refuse any server path a visitor typed (the operator's own is allowed)."""
    folder = (folder or "").strip() or None
    if folder and public_mode() and folder != (allowed or None):
        raise PublicModeError(
            "This public app does not read folders on its server. Run the explorer on your own "
            "machine to use local checkpoints or saved atlases."
        )
    return folder


def check_model(ref: str, known: list[str]) -> str:
    """In public mode only the names in ``known`` (registry + operator's checkpoints) are allowed."""
    ref = (ref or "").strip()
    if public_mode() and ref not in known:
        raise PublicModeError(
            f"This public app only runs the models in its list, not {ref!r}. Choose one of: "
            f"{', '.join(known)}."
        )
    return ref
