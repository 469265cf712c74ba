"""Public mode: the rules for an app that strangers can reach (a Hugging Face Space, a classroom).

On by default where ``SPACE_ID`` is set (Hugging Face Spaces set it), or with ``EXPLORER_PUBLIC=1``;
``EXPLORER_PUBLIC=0`` turns it off even on a Space. Read at call time, so tests can flip it.

In public mode:

* uploads are smaller (20 MB a file, 16 MP an image, 1,000 images or 500 MB unpacked a set) and
  the lab works at 512 px at most (an explicit ``EXPLORER_MAX_*`` variable still wins);
* no server paths: the models-folder box, folder scanning and saved-atlas folders are refused
  (the operator's own ``EXPLORER_MODELS_DIR`` still works);
* only registry models (and the operator's local checkpoints): no Hub ids, no paths;
* one visitor cannot take the app from everyone: each network address (and each browser tab
  inside it) may have a bounded number of requests waiting or running, and work is priced in
  estimated CPU-seconds against a per-minute budget (:func:`fairshare`, :func:`price`; the
  limits are ``EXPLORER_VISITOR_*`` / ``EXPLORER_SESSION_*``, see the README);
* always, public or not: no ``trust_remote_code``, weights through safetensors or
  ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import functools

from explorer.core import settings
from explorer.core.bodylimit import data_url_cap
from explorer.core.errors import ExplorerError
from explorer.core.fairshare import FairShare, Limits, Refused
from explorer.core.safe_text import display_name


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
            f"This public app only runs the models in its list, not {display_name(ref)!r}. "
            "Choose one of: "
            f"{', '.join(known)}."
        )
    return ref


# --------------------------------------------------------------------------- fair share


def limits(s: settings.Settings | None = None) -> Limits:
    """The per-visitor :class:`~explorer.core.fairshare.Limits` the settings ask for: budgets
    save up to 3 minutes' worth; the request bodies one address may hold waiting are capped at
    twice the largest request."""
    s = s or settings.get()
    return Limits(
        per_address=s.visitor_requests,
        per_session=s.session_requests,
        address_bytes=2 * request_cap(s),
        address_rate=s.visitor_cpu_s,
        address_burst=3 * s.visitor_cpu_s,
        session_rate=s.session_cpu_s,
        session_burst=3 * s.session_cpu_s,
        known=tuple(s.known_addresses),
    )


@functools.lru_cache(maxsize=4)
def _ledger(lim: Limits) -> FairShare:
    return FairShare(lim)


def fairshare() -> FairShare:
    """The process's per-visitor ledger for the current limits (one per set of limits)."""
    return _ledger(limits())


def request_cap(s: settings.Settings | None = None) -> int:
    """Bytes of the largest request body the app accepts outside uploads: ``EXPLORER_REQUEST_MB``,
    else two images at the upload limit inline as ``data:`` URLs (the interpolation's two)."""
    s = s or settings.get()
    if s.request_mb is not None:
        return int(s.request_mb * 2**20)
    return data_url_cap(s.max_file_bytes, images=2)


def upload_cap(s: settings.Settings | None = None) -> int:
    """Bytes of the largest ``/upload`` body: ``EXPLORER_UPLOAD_MB``, else the larger of the zip
    and file limits plus 1 MiB of multipart framing."""
    s = s or settings.get()
    if s.upload_mb is not None:
        return int(s.upload_mb * 2**20)
    return max(s.max_zip_bytes, s.max_file_bytes) + 2**20


def price(cost: float) -> None:
    """Public mode: charge ``cost`` (estimated CPU-seconds, before any work) to the visitor of
    this request, or refuse with a sentence saying when to try again. Private mode, or no
    visitor (the CLI, a test calling a handler): nothing."""
    if not public_mode():
        return
    try:
        fairshare().charge_current(cost)
    except Refused as exc:
        raise PublicModeError(exc.sentence) from None
