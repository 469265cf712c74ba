"""Shared UI pieces: the safe image input, user-facing errors, progress, static files."""

from __future__ import annotations

import copy
import functools
import hashlib
import html
import logging
import math
import re
import traceback
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from explorer.core import files, public
from explorer.core.errors import ExplorerError
from explorer.core.progress import Progress
from explorer.core.safe_text import clip_for_log, markdown_text
from explorer.images import io as imaging
from explorer.models import registry
from explorer.spaces import baselines

log = logging.getLogger("explorer")

STATIC = Path(__file__).resolve().parents[1] / "static"


@functools.cache
def scatter_js() -> Path:
    """The atlas panels' renderer (``explorer/static/scatter.js``: regl-scatterplot, built by
    ``js/build.sh``), copied once into the app's own static folder under a name of its content
    and served from there: its URL names no installation path, and a rebuilt file a new URL."""
    data = (STATIC / "scatter.js").read_bytes()
    out = files.tmp_root() / "static" / f"scatter-{hashlib.sha256(data).hexdigest()[:12]}.js"
    if not out.exists():
        files.atomic_write(out, data)
    return out


class SafeImage(gr.Image):
    """gr.Image whose upload is handed to our own loader untouched, as a file path.

    Gradio's own preprocessing opens the file with Pillow before our code runs, and decodes a
    ``data:`` URL sent without a file (a paste, or an API call) whole, whatever its size or
    pixel count, before any check of ours. Here an uploaded file is passed on as its path, and
    a ``data:`` URL is only base64-decoded (held to the upload size limit) and written, as it
    came, to Gradio's cache: every image reaches ``imaging.load_image``, whose byte and
    megapixel limits apply before any decode, and which refuses bad input with a sentence.
    """

    def get_block_name(self) -> str:
        return "image"

    def preprocess(self, payload):
        if payload is None:
            return None
        url = getattr(payload, "url", None) or ""
        try:
            if url.startswith("data:"):
                return _data_url_to_cache(url, self.GRADIO_CACHE)
            if getattr(payload, "path", None):
                return str(payload.path)
        except ExplorerError as exc:
            raise _error(str(exc)) from exc
        raise _error(  # a web address, or nothing: never fetched, never read as a path
            "No image file arrived with this request (links are not downloaded). "
            "Upload a PNG, JPEG, WebP or GIF file."
        )


def _data_url_to_cache(url: str, cache_dir: str) -> str:
    """A data: URL's bytes (undecoded, size-checked) -> a file in Gradio's cache; its path."""
    from gradio import processing_utils

    data = imaging.data_url_bytes(url)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    path = (folder / "pasted-image").resolve()
    if not path.exists():
        files.atomic_write(path, data)
    return str(path)


class SafeSketchpad(gr.Sketchpad):
    """gr.Sketchpad whose images are measured before they are decoded: at most
    :attr:`MAX_LAYERS` layers and :attr:`MAX_SIDE` pixels a side each (the canvas is far
    smaller), so a request cannot make the server decode a huge or many-layered "drawing"."""

    MAX_LAYERS = 4
    MAX_SIDE = 2048

    def get_block_name(self) -> str:
        return "imageeditor"

    def preprocess(self, payload):
        if payload is not None:
            layers = payload.layers
            if payload.id is not None:
                cached = self.blob_storage.get(payload.id)
                layers = cached.layers if cached else []
            if len(layers or []) > self.MAX_LAYERS:
                raise gr.Error(
                    f"A drawing has at most {self.MAX_LAYERS} layers; this one has "
                    f"{len(layers)}. Draw on the canvas in the app."
                )
        return super().preprocess(payload)

    def convert_and_format_image(self, file, flatten_on_white: bool = False):
        if file is not None:
            from io import BytesIO

            source = BytesIO(file) if isinstance(file, bytes | bytearray) else file.path
            try:
                with Image.open(source) as im:
                    w, h = im.size
            except (OSError, ValueError) as exc:
                raise gr.Error("The drawing could not be read as an image.") from exc
            if max(w, h) > self.MAX_SIDE:
                raise gr.Error(
                    f"A drawing is at most {self.MAX_SIDE} pixels a side; this one is {w}×{h}."
                )
        return super().convert_and_format_image(file, flatten_on_white)


class ExplorerBlocks(gr.Blocks):
    """gr.Blocks whose every refusal is a sentence.

    Gradio answers an exception that is not a ``gr.Error`` with a bare "Error" (its message is
    hidden unless ``show_error``): a request with too few values, a value of the wrong kind (a
    number for an image, a list for a slider) or a path outside the upload folder fails in
    Gradio's own input processing, before any handler. Those become one sentence naming the
    inputs the endpoint takes; a failure inside a handler goes through :func:`user_error`, the one
    translation of errors into sentences (the handlers' ``@user_errors`` and the in-place display
    use it too).
    """

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        labels = (
            ", ".join(_input_label(b) for b in block_fn.inputs if not isinstance(b, gr.State))
            or "no values"
        )
        if len(inputs or []) < len(block_fn.inputs):
            raise _error(
                f"This request sent {len(inputs or [])} values; this action takes "
                f"{len(block_fn.inputs)} ({labels}). Send them as the app's API page describes."
            )
        for block, value in zip(block_fn.inputs, inputs or [], strict=False):
            _check_number(block, value)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error as exc:
            # Gradio's own "Value: 'x' (type: <class 'str'>) is not in the list of choices: [..]"
            text = re.sub(r" \(type: <class '\w+'>\)", "", str(exc.message or "")).rstrip(".")
            if "is not in the list of choices" in text:
                raise _error(f"{clip_for_log(text, 300)}. Pick one of the choices.") from exc
            raise _error(str(exc.message or "")) from exc
        except Exception as exc:
            log.info("refused a request's values: %s: %s", type(exc).__name__, clip_for_log(exc))
            raise _error(
                "A value in this request is not of the kind this action takes "
                f"({labels}). Use the app's page, or send the values its API page describes."
            ) from exc

    async def call_function(self, *args, **kwargs):
        try:
            return await super().call_function(*args, **kwargs)
        except Exception as exc:
            raise user_error(exc) from exc

    async def postprocess_data(self, block_fn, predictions, state):
        """Gradio's, except that an output left as it is (``gr.skip()``) costs nothing: Gradio
        rebuilds the component of every update it is handed, a skip included, and that
        component's API schema (pydantic), several ms apiece; the atlas's 3-second timer skips
        its 14 outputs on every tick. The answer sent is Gradio's own (``{"__type__":
        "update"}`` for each skip)."""
        outputs = list(block_fn.outputs)
        several = isinstance(predictions, list | tuple) and len(predictions) == len(outputs) > 1
        skipped = set()
        if several and not block_fn.batch:
            skipped = {
                i for i, p in enumerate(predictions) if _is_skip(p) and not outputs[i].stateful
            }
        if not skipped:
            return await super().postprocess_data(block_fn, predictions, state)
        keep = [i for i in range(len(outputs)) if i not in skipped]
        out: list = [gr.skip() for _ in outputs]
        if keep:
            rest = copy.copy(block_fn)
            rest.outputs = [outputs[i] for i in keep]
            kept = [predictions[i] for i in keep]
            done = await super().postprocess_data(rest, kept if len(keep) > 1 else kept[0], state)
            for i, value in zip(keep, done, strict=True):
                out[i] = value
        return out

    # Public mode's fair share (explorer.ui.fairness): the queue, the visitor, the middleware

    def queue(self, *args, **kwargs):
        """Gradio's ``queue()``; in public mode the direct ``/run`` and ``/api`` routes are
        closed (every request goes through the queue) and the queue is a fair one."""
        from explorer.ui import fairness

        if public.public_mode():
            kwargs["api_open"] = False
        out = super().queue(*args, **kwargs)
        if public.public_mode():
            fairness.install_queue(self, public.fairshare())
        return out

    async def process_api(self, *args, **kwargs):
        """Each handler runs with its visitor set (public mode), so that its price is charged
        to the address and session that asked (:func:`explorer.core.public.price`)."""
        from explorer.core.visitors import use_visitor
        from explorer.ui import fairness

        who = fairness.request_visitor(kwargs.get("request")) if public.public_mode() else None
        token = use_visitor(who)
        try:
            return await super().process_api(*args, **kwargs)
        finally:
            token.var.reset(token)

    def launch(self, *args, **kwargs):
        """Gradio's ``launch()`` with the app's middleware (body caps, safe downloads; public
        mode: the per-visitor gate) and, in public mode, no server-side rendering (a Node
        server in front would be one more proxy hop)."""
        from explorer.ui import fairness

        app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
        app_kwargs["middleware"] = [*fairness.middleware(self), *app_kwargs.get("middleware", [])]
        if public.public_mode():
            kwargs["ssr_mode"] = False
        return super().launch(*args, app_kwargs=app_kwargs, **kwargs)


def _is_skip(value: object) -> bool:
    """Whether a handler's output is ``gr.skip()`` (an update of nothing)."""
    return isinstance(value, dict) and value == {"__type__": "update"}


def _input_label(block) -> str:
    label = getattr(block, "label", None)
    return f"{label or type(block).__name__.lower()}"


def _check_number(block, value) -> None:
    """A slider's or number box's value must be a finite number: NaN passes every range check
    (each comparison is false), so it is refused here with a sentence naming the control."""
    if not isinstance(block, gr.Slider | gr.Number) or not isinstance(value, float):
        return
    if math.isfinite(value):
        return
    lo, hi = getattr(block, "minimum", None), getattr(block, "maximum", None)
    span = f" between {lo:g} and {hi:g}" if lo is not None and hi is not None else ""
    raise _error(
        f"{_input_label(block)} must be a number{span}, not {value}. Set {_input_label(block)} "
        "on the app's page, or send a number."
    )


MAX_MESSAGE_CHARS = 1000  # a sentence longer than this was built from a visitor's long text


def _error(message: str) -> gr.Error:
    """A refusal's sentence as the ``gr.Error`` the visitor gets: shortened to
    :data:`MAX_MESSAGE_CHARS`, ``& < >`` escaped (Gradio shows an error's message as HTML) and
    no traceback printed (it is a sentence for the visitor, not a fault; a fault is logged by
    :func:`user_error`). ``plain``: the sentence as text, for showing it in place."""
    text = str(message)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    err = gr.Error(html.escape(text, quote=False), print_exception=False)
    err.plain = text
    return err


def cache_image_atomically(img: Image.Image | np.ndarray, cache_dir: str, fmt: str = "webp") -> str:
    """Save an output image into Gradio's cache the way Gradio does (a folder named by the
    content hash), but atomically; returns the file's path.

    Gradio's own ``save_pil_to_cache`` rewrites an existing file of identical content in place,
    so when two sessions produce the same image at once (a blank error map, say) one of them can
    be served a file truncated to 0 bytes ("Too little data for declared Content-Length";
    found by bench/load.py). Written once under a temporary name and renamed, the file is always
    whole, and an existing copy is reused.
    """
    from gradio import processing_utils

    if isinstance(img, np.ndarray):
        img = Image.fromarray(processing_utils._convert(img, np.uint8, force_copy=False))
    data = processing_utils.encode_pil_to_bytes(img, fmt)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    path = (folder / f"image.{fmt}").resolve()
    if not path.exists():
        files.atomic_write(path, data)
    return str(path)


class ImageOut(gr.Image):
    """An output gr.Image whose PIL / array values reach Gradio's cache atomically."""

    def get_block_name(self) -> str:
        return "image"

    def postprocess(self, value):
        if isinstance(value, Image.Image | np.ndarray):
            value = cache_image_atomically(value, self.GRADIO_CACHE, self.format or "webp")
        return super().postprocess(value)


def user_error(exc: BaseException, action: str | None = None) -> gr.Error:
    """The one translation of a failure into what a visitor reads: a ``gr.Error`` stays as it is,
    an :class:`ExplorerError` becomes its sentence, and anything else is logged (with its
    traceback) and answered with a sentence that names the action, never the exception's text
    (which can hold paths, values or internals)."""
    if isinstance(exc, gr.Error):
        exc.print_exception = False  # a sentence, not a fault: no traceback in the log
        return exc
    if isinstance(exc, ExplorerError):
        return _error(str(exc))
    log.error("%s failed: %s", action or "a request", _clipped_traceback(exc))
    what = f"{action} failed" if action else "This request could not be answered"
    return _error(
        f"{what} ({type(exc).__name__}); nothing was changed. Check its values, try another "
        "image, a smaller resolution or another model, or try again from the app's page."
    )


def _clipped_traceback(exc: BaseException) -> str:
    """A fault's traceback for the log, each line at most 300 characters (an exception's text
    can hold what a visitor sent)."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(clip_for_log(line.rstrip("\n"), 300) + "\n" for line in lines[-40:])


def user_errors(action: str) -> Callable:
    """Decorator: the handler's failures through :func:`user_error`, named by ``action``."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                raise user_error(exc, action) from exc

        return inner

    return wrap


def error_markdown(message: str) -> str:
    """A failure's sentence (plain text) as the markdown shown where the result would have
    been: the sentence is escaped, so names in it (a file's, a label's) show as text."""
    return f"> **⚠ Not done.** {markdown_text(message)}"


def in_place(fn: Callable, n_outputs: int, slot: int | None, cleared=None) -> Callable:
    """``fn`` as a UI handler whose failure is shown where
    the result would be and stays until the next action: the sentence goes to output ``slot``
    (a Markdown), every other output is cleared (``cleared``: their empty values, or a function
    of the gr.Error returning them; default None each), and no toast or "Error" badge appears.
    ``slot`` None: one extra Markdown output at the end, emptied on success."""

    @functools.wraps(fn)
    def inner(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except Exception as raised:
            exc = user_error(raised)
            out = list(cleared(exc) if callable(cleared) else cleared or [None] * n_outputs)
            said = getattr(exc, "plain", exc.message)
            if slot is None:
                return (*out, error_markdown(said))
            out[slot] = error_markdown(said)
            return tuple(out)
        if slot is None:
            return (*(result if isinstance(result, tuple) else (result,)), "")
        return result

    return inner


def listen(
    event: Callable,
    api: gr.Button | None,
    fn: Callable,
    inputs: list,
    outputs: list,
    *,
    api_name: str | None = None,
    slot: int | None,
    cleared=None,
    status: gr.Markdown | None = None,
    **kwargs,
):
    """Wire ``fn`` twice: to ``event`` (a UI trigger's listener, e.g. ``button.click``) with its
    failure shown in place (:func:`in_place`; ``status``: the extra Markdown when ``slot`` is
    None), and, under ``api_name``, to the hidden ``api`` button, where it raises, so that API
    clients get an error, not a value. Both share one concurrency limit. Returns the UI
    listener's dependency (for a ``.then``)."""
    ui_outputs = [*outputs, status] if slot is None else outputs
    cid = api_name or fn.__name__
    dep = event(
        in_place(fn, len(outputs), slot, cleared),
        inputs,
        ui_outputs,
        api_name=False,
        concurrency_id=cid,
        **kwargs,
    )
    if api is not None and api_name:
        api.click(fn, inputs, outputs, api_name=api_name, concurrency_id=cid)
    return dep


def progress_adapter(progress: gr.Progress) -> Progress:
    return lambda f, desc: progress(f, desc=desc)


def file_url(path: str) -> str:
    """The URL under which the app serves a file from one of its static folders."""
    return f"/gradio_api/file={path}"


def space_refs(checked, choices: dict[str, str], models: dict[str, str]) -> list[str]:
    """Ticked family labels (``"CLIP"``) -> ``family:model`` refs, in ``choices``' order."""
    return [f"{fam}:{models[fam]}" for label, fam in choices.items() if label in (checked or [])]


def check_space_refs(refs: list[str], folder: str | None) -> str | None:
    """Public mode's rules for a request naming spaces (before any image is read): the folder
    must be the operator's own and every model a listed one. Returns the folder (None if none)."""
    allowed = str(registry.models_dir() or "")
    folder = public.check_folder(folder, allowed)
    known = registry.available_models(allowed or None) + registry.available_embedders()
    known += registry.available_unets()
    for ref in refs:
        family, _, model = ref.partition(":")
        if family in baselines.MODELS:  # computed from the pixels: no model, nothing to load
            if model not in ("", baselines.MODELS[family]):
                raise ExplorerError(f"The {family} control has one form: {family}.")
            continue
        public.check_model(model.split("@", 1)[0] if family == "unet" else model, known)
    return folder or None
