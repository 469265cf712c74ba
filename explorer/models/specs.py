"""What each model is, before anything is loaded: the spec dataclasses (VAESpec, EmbedderSpec,
UNetSpec) and the built-in catalogue of them (REGISTRY, EMBEDDERS, UNETS). Pure data, no torch;
:mod:`explorer.models.registry` resolves names against these tables and the models registered in code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from explorer.core.errors import ExplorerError

Kind = Literal["kl", "tiny", "taesd-local", "vq"]
EmbedderFamily = Literal["clip", "dino", "vit"]
EMBEDDER_FAMILIES: tuple[str, ...] = ("clip", "dino", "vit")
POOLINGS: dict[str, tuple[str, ...]] = {
    "clip": ("projected",),
    "dino": ("cls", "mean", "cls+mean"),
    "vit": ("cls", "mean", "cls+mean"),
}
_FAMILY_OF_MODEL_TYPE = {"clip": "clip", "dinov2": "dino", "vit": "vit"}
DOWNLOAD_HINT = (
    "Run `python -m explorer download` once on a machine with internet to fill the "
    "Hugging Face cache (for a VAE, a local TAESD-family checkpoint folder works offline too)."
)


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class VAESpec:
    """What the explorer needs to know about one autoencoder, before loading it.

    ``kind``: ``"kl"`` a diffusers AutoencoderKL (posterior mean and std), ``"tiny"`` a
    TAESD-family autoencoder in diffusers' AutoencoderTiny format (deterministic),
    ``"taesd-local"`` a TAESD-family ``<name>_encoder`` / ``<name>_decoder`` file pair,
    ``"vq"`` a diffusers VQModel (continuous pre-quantisation latent; decode snaps each latent
    pixel to its nearest codebook entry). A VQ model's scale and shift are the spec's own: the
    Hub configs carry diffusers' default 0.18215, which the latent-diffusion VQ pipelines ignore.
    ``build`` (models registered in code): constructs the module in this process; ``revision``
    then identifies its weights in embedding-cache keys (None: its rows are never cached).
    """

    name: str
    kind: Kind
    repo_id: str | None = None
    subfolder: str | None = None
    latent_channels: int = 4
    scaling_factor: float = 1.0
    shift_factor: float = 0.0
    half: Literal["fp16", "bf16"] | None = "fp16"
    description: str = ""
    gated: bool = False
    default: bool = False
    encoder_path: Path | None = None
    decoder_path: Path | None = None
    revision: str | None = None
    build: Callable[[], Any] | None = field(default=None, compare=False, repr=False)
    cpu_seconds_per_megapixel: float | None = None
    """CPU-seconds for one encode plus one decode of a megapixel (public mode prices work with
    it); None: the figure for the kind (:mod:`explorer.core.costs`)."""

    @property
    def stochastic(self) -> bool:
        """KL VAEs have a posterior with a std; tiny autoencoders are deterministic."""
        return self.kind == "kl"

    @property
    def source(self) -> str:
        if self.build is not None:
            return f"registered by {self.build.__module__}"
        if self.repo_id:
            return self.repo_id + (f" ({self.subfolder})" if self.subfolder else "")
        return str(self.encoder_path.parent) if self.encoder_path else ""


@dataclass(frozen=True)
class EmbedderSpec:
    """What the explorer needs to know about one image embedder, before loading it.

    ``extra`` may hold ``pooling`` (dino/vit: ``"cls"``, ``"mean"`` or ``"cls+mean"``).
    ``build`` and ``revision``: as for :class:`VAESpec` (``build()`` returns the model, its image
    processor and, for CLIP, its tokenizer).
    """

    name: str
    family: EmbedderFamily
    repo_id: str | None
    description: str
    default: bool = False
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    revision: str | None = None
    build: Callable[[], tuple[Any, Any, Any]] | None = field(
        default=None, compare=False, repr=False
    )
    cpu_seconds_per_image: float | None = None
    """CPU-seconds for one image (public mode prices work with it); None: the family's figure
    (:mod:`explorer.core.costs`)."""

    @property
    def pooling(self) -> str:
        return self.extra.get("pooling", POOLINGS[self.family][0])

    def check_pooling(self, pooling: str | None) -> str:
        """``pooling`` (default: the spec's own) if this family can pool so, else ExplorerError."""
        pooling = pooling or self.pooling
        if pooling not in POOLINGS[self.family]:
            raise ExplorerError(
                f"{self.name} ({self.family}) cannot pool {pooling!r}; choose one of "
                f"{', '.join(POOLINGS[self.family])}."
            )
        return pooling

    @property
    def source(self) -> str:
        if self.build is not None:
            return f"registered by {self.build.__module__}"
        return self.repo_id or ""


_SD = {"scaling_factor": 0.18215, "latent_channels": 4}
REGISTRY: dict[str, VAESpec] = {
    s.name: s
    for s in [
        VAESpec(
            "sd-vae-ft-mse",
            "kl",
            "stabilityai/sd-vae-ft-mse",
            **_SD,
            default=True,
            description="Stable Diffusion 1.x/2.x VAE, decoder fine-tuned with MSE (the usual SD 1.5 VAE).",
        ),
        VAESpec(
            "sd-vae-ft-ema",
            "kl",
            "stabilityai/sd-vae-ft-ema",
            **_SD,
            description="Stable Diffusion 1.x/2.x VAE, decoder fine-tuned with EMA weights.",
        ),
        VAESpec(
            "sdxl-vae",
            "kl",
            "stabilityai/sdxl-vae",
            scaling_factor=0.13025,
            half=None,
            description="SDXL VAE (overflows in fp16: runs in fp32; use sdxl-vae-fp16-fix for half precision).",
        ),
        VAESpec(
            "sdxl-vae-fp16-fix",
            "kl",
            "madebyollin/sdxl-vae-fp16-fix",
            scaling_factor=0.13025,
            description="SDXL VAE fine-tuned to stay finite in fp16.",
        ),
        VAESpec(
            "sd3-vae",
            "kl",
            "stabilityai/stable-diffusion-3-medium-diffusers",
            "vae",
            latent_channels=16,
            scaling_factor=1.5305,
            shift_factor=0.0609,
            half="bf16",
            gated=True,
            description="Stable Diffusion 3 VAE, 16 channels (gated: accept the licence on the Hub and log in).",
        ),
        VAESpec(
            "flux1-vae",
            "kl",
            "black-forest-labs/FLUX.1-schnell",
            "vae",
            latent_channels=16,
            scaling_factor=0.3611,
            shift_factor=0.1159,
            half="bf16",
            description="FLUX.1 VAE, 16 channels.",
        ),
        VAESpec(
            "ldm-vq-f4-celebahq",
            "vq",
            "CompVis/ldm-celebahq-256",
            "vqvae",
            latent_channels=3,
            half=None,
            description="Latent-diffusion VQ-f4 autoencoder (3 channels, 8192 codes) of the "
            "CelebA-HQ LDM; faces. Apache-2.0; .bin weights, loaded with weights_only.",
        ),
        VAESpec(
            "ldm-vq-f4-openimages",
            "vq",
            "CompVis/ldm-super-resolution-4x-openimages",
            "vqvae",
            latent_channels=3,
            half=None,
            description="Latent-diffusion VQ-f4 autoencoder (3 channels, 8192 codes) of the "
            "4x super-resolution LDM, trained on OpenImages. Apache-2.0; .bin weights, loaded "
            "with weights_only.",
        ),
        VAESpec(
            "taesd",
            "tiny",
            "madebyollin/taesd",
            default=True,
            description="Tiny autoencoder for the SD 1.x latent space (~1 s on a laptop CPU).",
        ),
        VAESpec(
            "taesdxl",
            "tiny",
            "madebyollin/taesdxl",
            description="Tiny autoencoder for the SDXL latent space.",
        ),
        VAESpec(
            "taesd3",
            "tiny",
            "madebyollin/taesd3",
            latent_channels=16,
            description="Tiny autoencoder for the SD3 latent space, 16 channels.",
        ),
        VAESpec(
            "taef1",
            "tiny",
            "madebyollin/taef1",
            latent_channels=16,
            description="Tiny autoencoder for the FLUX.1 latent space, 16 channels.",
        ),
    ]
}

EMBEDDERS: dict[str, EmbedderSpec] = {
    s.name: s
    for s in [
        EmbedderSpec(
            "clip-vit-b32",
            "clip",
            "openai/clip-vit-base-patch32",
            "OpenAI CLIP ViT-B/32: 512-d image-text space, trained on 400M captioned images.",
            default=True,
        ),
        EmbedderSpec(
            "clip-vit-b16",
            "clip",
            "openai/clip-vit-base-patch16",
            "OpenAI CLIP ViT-B/16: 512-d, finer patches than B/32 (slower, a little better).",
        ),
        EmbedderSpec(
            "clip-vit-l14",
            "clip",
            "openai/clip-vit-large-patch14",
            "OpenAI CLIP ViT-L/14: 768-d, the text encoder's partner in Stable Diffusion 1.x.",
        ),
        EmbedderSpec(
            "dinov2-small",
            "dino",
            "facebook/dinov2-small",
            "DINOv2 ViT-S/14: 384-d self-supervised features (no labels, no text).",
            default=True,
        ),
        EmbedderSpec(
            "dinov2-base",
            "dino",
            "facebook/dinov2-base",
            "DINOv2 ViT-B/14: 768-d self-supervised features.",
        ),
        EmbedderSpec(
            "vit-b16",
            "vit",
            "google/vit-base-patch16-224",
            "Supervised ViT-B/16 (ImageNet-21k, fine-tuned on ImageNet-1k): 768-d CLS token.",
        ),
    ]
}


# --------------------------------------------------------------------------- diffusion UNets


@dataclass(frozen=True)
class UNetSpec:
    """A Stable Diffusion pipeline whose UNet bottleneck is an embedding space (``unet:<name>``).

    ``repo_id`` holds the pipeline (subfolders ``unet``, ``text_encoder``, ``tokenizer``);
    ``vae``: the registry VAE that encodes for it (SD 1.x: sd-vae-ft-mse, whose encoder is the
    pipeline's own -- only its decoder was fine-tuned); ``resolution``: the square input size;
    ``variant``: the weight files' variant (``fp16`` halves the download; run in fp32 on a CPU).
    ``cpu_seconds_per_image``: a rough figure for the time estimate shown before a CPU run.
    ``build`` (registered in code): returns ``(UNet2DConditionModel, CLIPTextModel, tokenizer)``.
    """

    name: str
    repo_id: str | None
    vae: str
    description: str
    resolution: int = 512
    variant: str | None = "fp16"
    subfolder: str = "unet"
    cpu_seconds_per_image: float = 10.0
    revision: str | None = None
    build: Callable[[], tuple[Any, Any, Any]] | None = field(
        default=None, compare=False, repr=False
    )

    @property
    def source(self) -> str:
        if self.build is not None:
            return f"registered by {self.build.__module__}"
        return f"{self.repo_id} (unet, text_encoder, tokenizer)"


UNETS: dict[str, UNetSpec] = {
    s.name: s
    for s in [
        UNetSpec(
            "sd15-unet",
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "sd-vae-ft-mse",
            "Stable Diffusion 1.5 UNet: mid-block features of the noised VAE latent, empty "
            "prompt (~2 GB in fp16; fetch with `python -m explorer download sd15-unet`).",
        ),
        # SDXL's UNet is left out: it also needs added_cond_kwargs (pooled text embeds of its
        # second text encoder, size and crop time ids), a second tokenizer and ~5 GB.
    ]
}
