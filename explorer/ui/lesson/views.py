"""The guided lesson ("Start here"): the eight steps' texts and :func:`run_step`, which runs one
(:mod:`.steps` holds the computations and their "what to notice" lines).

No gradio here: :func:`run_step` returns a :class:`~.steps.StepResult` of plain values for the
tab to show and the tests to check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from explorer.core.errors import ExplorerError
from explorer.core.progress import Progress, no_progress
from explorer.ui.lesson.steps import (
    SD_VAE,
    StepResult,
    sd_ratio,
    step_atlas,
    step_autoencoders,
    step_interpolation,
    step_kl_prior,
    step_latent_maps,
    step_perturbations,
    step_round_trip,
)


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    button: str | None  # None: a text-only step
    shows: tuple[str, ...] = ()  # what the result holds: "image", "plot", "table"
    columns: tuple[str, ...] = ()  # the table's headers


STEPS: dict[int, Step] = {
    1: Step(
        "Autoencoders: why a variational one",
        "An autoencoder squeezes a picture into a few numbers (the latent) and rebuilds it. A "
        "plain AE is trained only to rebuild, so its latents land wherever is convenient; a VAE "
        "also pays a KL penalty for straying from N(0, I), so that draws from N(0, I) fall "
        "where its decoder was trained. Whether its samples then look more like digits is "
        "measured, not promised: the table's *sample_confidence* is the digit classifier's "
        "mean confidence on decoded N(0, I) draws. Here both are trained on 8×8 digits with a "
        "2-D latent (the playground's models, not the VAE of the other steps).",
        "Train (or load) the AE and the VAE",
        ("image", "table"),
        ("model", "recon_mse", "prior_kl", "sample_confidence"),
    ),
    2: Step(
        "Latent maps: the picture is still there",
        "A VAE turns a photo into a smaller grid of numbers with several channels per cell "
        f"(Stable Diffusion's {SD_VAE}: 8× smaller on each side, 4 channels, "
        f"{sd_ratio():.0f}× fewer numbers; other models differ, and the result below says what "
        "the model that ran did). Shown as colours (its first three principal components), the "
        "grid can still look like the photo: a re-coded picture. *Misconception:* VAE latents "
        "are not a semantic embedding by construction — step 7 measures what their "
        "neighbours share.",
        "Encode the astronaut",
        ("image", "table"),
        ("what", "value"),
    ),
    3: Step(
        "Round trip: how much comes back",
        "Decoding the latent gives the picture back, not perfectly: PSNR (dB, higher is "
        "better) and SSIM (1 = identical structure) measure how close, and the error map shows "
        "where it differs. Repeating the round trip shows how the loss builds up. "
        "*Misconception:* the VAE is not where Stable Diffusion's GAN lives — the SD VAE is "
        "trained with a patch-GAN loss to keep its decodes sharp, but it is not the generator: "
        "the UNet makes the picture, the VAE only translates it to and from pixels.",
        "Round-trip the astronaut",
        ("image", "table"),
        ("generation", "psnr_db", "ssim"),
    ),
    4: Step(
        "The prior: how Gaussian is the latent?",
        "A KL VAE's training pushes each latent towards N(0, 1), and a scaling factor brings "
        "what the diffusion model sees to roughly unit variance. A tiny (deterministic) "
        "autoencoder has no KL term, and a VQ model has no Gaussian prior at all: its decoder "
        "sees codebook entries. The result says which kind ran and compares the astronaut's "
        "latent values with N(0, 1) (or, for a VQ model, describes them).",
        "Measure the astronaut's latent",
        ("plot", "table"),
        ("statistic", "value"),
    ),
    5: Step(
        "Interpolation: halfway in latent space",
        "Walk along a spherical path (slerp: the arc between the two latents, which keeps "
        "their length) from the astronaut's latent to the coffee's and decode each step; "
        "below it, a plain pixel crossfade with the same steps. Is the halfway frame a blend "
        "of colour and texture, or an image halfway in meaning? Compare it with the "
        "crossfade's.",
        "Interpolate astronaut → coffee",
        ("image", "table"),
        ("what", "psnr_db"),
    ),
    6: Step(
        "Perturbations: what moves the latent",
        "Mirror the photo, turn its hues, take its colour away or blur it a little, and measure "
        "how far its VAE latent moves, as a share of the distance to an unrelated photo "
        "(100 % = as far as a different picture). A mirror image keeps every object and every "
        "colour; a space that followed meaning would barely move.",
        "Perturb the astronaut (VAE)",
        ("image", "table"),
        ("change", "distance"),
    ),
    7: Step(
        "The atlas: what do neighbours share?",
        "The teaching set is 16 photos, each recoloured into 7 palettes. For every image we "
        "ask three questions of its 5 nearest neighbours in the VAE latent: are most of them "
        "versions of its own photo? Among *other* photos (its own recolourings left out), do "
        "they share its palette? Do they show the same thing? The result lists the three in "
        "the order the numbers give, each beside its chance level.",
        "Build the VAE atlas of the teaching set",
        ("table",),
        ("space", "labels", "knn5", "chance"),
    ),
    8: Step(
        "Where Stable Diffusion's semantics come from",
        "The prompt is read by the **CLIP text encoder**; its token embeddings steer the UNet "
        "through **cross-attention** at every denoising step, and the UNet works inside the "
        "VAE's latent space. Probing studies find the human-like semantic attributes in CLIP's "
        "representations rather than in the reverse diffusion process itself. The VAE only "
        "encodes and decodes pixels. *Misconception:* the VAE does not understand the prompt "
        "— it never sees it. This step has no button: comparing CLIP or DINOv2 with the VAE "
        "needs those models, which the Semantic atlas and Perturbations tabs load when they "
        "have been downloaded (`python -m explorer download`). Where a Stable Diffusion UNet is "
        "available, step 7 also measures its bottleneck (the forum's guess: more meaning than "
        "the VAE latent, less than a model trained for it) and says what the numbers show.",
        None,
    ),
}
RUNNABLE = tuple(n for n, s in STEPS.items() if s.button)


def parse_step(value) -> int | None:
    """A ``?step=`` value -> a step number in 1..8, or None."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n in STEPS else None


RUNNERS: dict[int, Callable[..., StepResult]] = {
    2: step_latent_maps,
    3: step_round_trip,
    4: step_kl_prior,
    5: step_interpolation,
    6: step_perturbations,
    7: step_atlas,
}


def run_step(
    n: int, model: str, folder: str | None = None, progress: Progress = no_progress
) -> StepResult:
    """Step ``n`` (1-7) on its bundled example with ``model`` -> :class:`StepResult`."""
    n = parse_step(n) or 0
    if n not in RUNNABLE:
        raise ExplorerError(f"Steps 1-{RUNNABLE[-1]} can be run; step 8 is text only.")
    if n == 1:
        return step_autoencoders(progress)
    return RUNNERS[n](model, folder or None, progress)
