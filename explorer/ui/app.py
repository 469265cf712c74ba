"""The Gradio app (the only package that imports gradio): the lesson ("Start here"), the lab, the
atlas, the autoencoders playground and the perturbations tabs, About."""

from __future__ import annotations

import math
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from PIL import Image

from explorer import atlas
from explorer.core import files, memory, public, settings
from explorer.images import io as imaging
from explorer.models import registry
from explorer.ui import availability, links
from explorer.ui.atlas import layout as atlas_layout
from explorer.ui.components import ExplorerBlocks, scatter_js
from explorer.ui.context import TabContext
from explorer.ui.lab import layout as lab
from explorer.ui.lesson import handlers as lesson_handlers
from explorer.ui.lesson import layout as lesson_tab
from explorer.ui.lesson import presenter as lesson_presenter
from explorer.ui.lesson import steps as lesson_steps
from explorer.ui.perturb import layout as perturb_tab
from explorer.ui.playground import layout as playground_tab

INTRO = f"""
# Latent Space Explorer
A Stable Diffusion VAE is a **perceptual compressor**: it squeezes an image into a small latent
grid (with {lesson_steps.SD_VAE}: 8× smaller on each side, 4 channels, {lesson_steps.sd_ratio():.0f}×
fewer numbers; other models differ, and every tab says what the model that ran did), and its KL
term pushes that grid towards a plain N(0, 1). What such a latent keeps — the photo, its colours,
its meaning? — is measured here, never assumed: encode your own pictures, see how well they come
back and what lies in between.
"""

CSS = """
.gradio-container {max-width: 1500px !important}
#summary table {font-size: 0.9em}
.playground-caption p {font-size: 0.85em; margin: 4px 0 -4px 0 !important}
.offline-notice {border: 1px solid var(--color-accent) !important; margin-bottom: 8px}
.offline-notice pre {margin: 4px 0 !important}
.offline-notice button {margin: 0 0 10px 12px}
.atlas-gallery .caption-label {max-width: 100% !important; white-space: normal !important;
  font-size: 11px !important; line-height: 1.2; padding: 1px 4px !important}
"""


ABOUT = """
## What you are looking at
* **Latent maps** — the encoder's output, channel by channel. For a KL VAE it is the posterior
  *mean*, multiplied by the model's scaling factor (and shifted, for SD3/FLUX) so that diffusion sees
  roughly unit variance; for a tiny autoencoder its one latent; for a VQ model the continuous
  latent before it is snapped to the codebook. Look for edges, colour blobs and layout: the grid is
  a re-coded, smaller picture (8× smaller on each side for the SD VAEs and the TAESD family).
* **Histogram vs N(0,1)** — a KL VAE's KL term pulls latents towards a standard normal; a tiny
  autoencoder has no KL term and a VQ model no Gaussian prior (the lab says which kind ran). How
  close the values get (mean, std, KL to N(0,1)) is printed beside the plot.
* **Round trip** — PSNR/SSIM of decode(encode(x)) against x, and where the error lands.
* **Interpolate** — straight (lerp) and spherical (slerp) paths between two latents, decoded, next to
  a plain pixel crossfade.
* **Edit channels** — change one channel and decode, and see where the change lands in pixels.

## What a VAE latent keeps, and why that matters for similarity search
Distances between VAE latents compare re-coded pictures. What they keep is measured on the teaching
set (16 photos, each in 7 palettes): how often a vote of an image's 5 nearest neighbours finds its
own photo, its palette among *other* photos, and its meaning among other photos, each against its
chance level. CLIP and DINOv2 were trained so that distances track meaning; the Semantic atlas
measures them the same way where they can be opened.
"""

ABOUT_PENDING = (
    "*Not measured yet in this session:* run step 7 of *Start here*, or open the teaching set in "
    "the Semantic atlas, and this paragraph states what the VAE's neighbours share, with that "
    "run's numbers, in the order they give."
)


# The request queue, read when the demo is built (EXPLORER_CONCURRENCY, EXPLORER_QUEUE_SIZE).
# * Concurrency: Gradio applies the limit to each event handler on its own (an event's
#   concurrency_id defaults to its function), so 2 means at most two encodes, two round trips, two
#   atlas builds, ... at once, and the total is capped by Gradio's 40 worker threads. Every model
#   runs one forward pass at a time anyway (VAE.lock, Embedder.lock: one GPU job per model), so a
#   second worker per handler only overlaps the CPU-side work (reading the upload, metrics,
#   figures, image encoding) with a model call; more would oversubscribe a small CPU and hold more
#   images in memory for no gain in throughput.
# * Queue size: the most events *waiting* (all handlers together; running ones not counted). At
#   0.1-2 s a job (bench/load.py, BENCHMARKS.md) 64 waiting events drain in well under a minute;
#   past that a visitor is better told at once than left waiting, and the bound also caps what
#   waiting requests hold. A full queue is refused by Gradio with HTTP 503 ("Queue is full. Max
#   size is 64 and size is 64."): the browser shows "This application is currently busy. Please
#   try again.", gradio_client raises QueueError("Queue is full! Please try again."). Both say
#   what happened and what to do, and neither is customisable without patching Gradio.


def build_demo() -> gr.Blocks:
    """The whole app as a gr.Blocks (not launched)."""
    folder0 = str(registry.models_dir() or "")
    names = registry.available_models(folder0 or None)
    default = registry.default_vae(folder0 or None)
    if default not in names:
        names = [default, *names]
    examples = [[str(p)] for p in imaging.example_images().values()]

    # Pillow's own decompression-bomb guard at the app's limit (it refuses at twice this): no
    # decoder, ours or a library's, opens an image far past what the app accepts
    Image.MAX_IMAGE_PIXELS = settings.get().max_pixels
    # Served where they are written (no second copy in Gradio's cache): plotly.js, hover
    # thumbnails and the atlas exports (files.tmp_path(.., area="exports"), pruned by age and size)
    exports = files.tmp_root() / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    gr.set_static_paths([str(scatter_js().parent), str(atlas.thumb_dir()), str(exports)])
    # Gradio's own cache (uploads, served outputs): checked hourly, files older than a day deleted
    # (public: every 10 min, older than an hour, and past EXPLORER_TMP_MAX_MB the oldest go, checked
    # every minute: _cap_gradio_cache), so a long-running Space's disk stays bounded.
    keep = (600, 3600) if public.public_mode() else (3600, 86400)
    with ExplorerBlocks(title="Latent Space Explorer", delete_cache=keep) as demo:
        intro = gr.Markdown(INTRO)
        about = gr.Markdown(ABOUT_PENDING, elem_id="about-measured", render=False)
        with gr.Tabs() as tabs:
            ctx = TabContext(demo, tabs, names, default, folder0, examples, about=about)
            lesson_ui = lesson_tab.build(ctx)  # first: "Start here"
            lab_ui = lab.build(ctx)
            # The classroom tabs go before the atlas, not after it: with Gradio 6.31 any
            # top-level tab after the atlas is drawn twice in the tab bar once clicked (its
            # button repeated, the next tab's hidden); About sits below the tabs for the same reason.
            playground_tab.build(ctx)
            perturb_tab.build(ctx)
            atlas_ui = atlas_layout.build(ctx)
        presenter = lesson_presenter.build(lesson_ui)  # hidden until ?present=1 or its button
        for notice in ctx.notices:
            availability.wire(notice, tabs, lab_ui.local)
        # A scanned folder is the app's state: every tab's notice, VAE lists and the lesson's
        # model follow it.
        notices = [c for n in ctx.notices for c in (n.group, n.text, n.button)]
        lab_ui.scanned.then(
            models_changed(ctx.notices),
            [lab_ui.folder, lesson_ui.state, *ctx.vae_lists],
            [lesson_ui.state, lesson_ui.line, *notices, *ctx.vae_lists],
            api_name=False,
            show_progress="hidden",
        )
        # Below the tabs, not a tab after the atlas (drawn twice once clicked, as above).
        with gr.Accordion(
            "About: what you are looking at", open=False, elem_id="about"
        ) as about_box:
            gr.Markdown(ABOUT)
            about.render()
        lesson_presenter.wire(demo, [intro, tabs, about_box], lesson_ui, presenter)
        links.wire_atlas(demo, atlas_ui)  # ?tab=atlas&set=bundled&colour=source&point=12
    demo.queue(
        default_concurrency_limit=settings.get().concurrency,
        max_size=settings.get().queue_size,
    )
    if public.public_mode():
        _cap_gradio_cache(demo)
        _release_memory()
    return demo


def models_changed(notices: list[availability.Notice]):
    """The handler that follows *Scan folder*: (folder, lesson state, each VAE list's value) ->
    the lesson's state and model line, every notice's (group, text, button) and every VAE list
    (choices for the folder, the value kept while it runs, else the first usable). A path that
    is no folder (its sentence is the scan's) or public mode changes nothing."""

    def fn(folder, state, *current):
        n = 2 + 3 * len(notices) + len(current)
        try:
            folder = availability.scanned_folder(folder)
        except ValueError:
            return (gr.skip(),) * n
        if public.public_mode():
            return (gr.skip(),) * n
        model = availability.pick_vae((state or {}).get("model"), folder)
        new = lesson_handlers.lesson_state(model, folder)
        names = registry.available_models(folder)
        lists = [gr.update(choices=names, value=availability.pick_vae(v, folder)) for v in current]
        updates = [u for nt in notices for u in availability.notice_updates(nt.need, folder)]
        return (new, lesson_handlers.runs_on(new), *updates, *lists)

    return fn


def _release_memory() -> None:
    """Public mode: freed memory (a finished atlas build's decoded images) goes back to the
    system every minute, not only when the atlas store evicts (glibc; one thread a process)."""
    if "thread" not in _released:
        _released["thread"] = files.every(files.PRUNE_EVERY_S, memory.release_freed, "memory")


_released: dict = {}


_gradio_cap: dict = {}  # the capping thread, its sweep, and the demo whose examples it spares


def _cap_gradio_cache(demo: gr.Blocks) -> None:
    """Public mode: Gradio's upload cache also gets a size cap (``EXPLORER_TMP_MAX_MB``, checked
    every minute, oldest first; its own sweep only goes by age), sparing the files its examples
    keep. One thread per process, for whichever demo was built last."""
    _gradio_cap["demo"] = demo
    if "thread" in _gradio_cap:
        return

    def kept() -> set[str]:
        blocks = _gradio_cap["demo"].blocks.values()
        return {str(f) for b in blocks for f in getattr(b, "keep_in_cache", ())}

    def sweep() -> int:
        # read at each sweep, as every public rule is: no cap once public mode is off
        limit = settings.get().tmp_max_mb * 1024 * 1024 if public.public_mode() else math.inf
        return files.cap_folder(Path(get_upload_folder()), limit, kept())

    _gradio_cap["sweep"] = sweep
    _gradio_cap["thread"] = files.every(files.PRUNE_EVERY_S, sweep, "Gradio cache cap")


def launch_kwargs() -> dict:
    """What ``demo.launch`` needs besides the server address (read from GRADIO_SERVER_* by Gradio)."""
    kwargs: dict = {"css": CSS}
    if public.public_mode():
        kwargs["max_file_size"] = imaging.max_file_bytes()  # Gradio refuses larger uploads itself
    return kwargs


def launch(demo: gr.Blocks | None = None, **kwargs) -> None:
    """Launch with the standard GRADIO_SERVER_NAME / GRADIO_SERVER_PORT variables honoured."""
    demo = demo or build_demo()
    demo.launch(**{**launch_kwargs(), **kwargs})
