"""Tiny, seeded, randomly initialised models for the tests: the same code paths as real models.

A plugin in the sense of :mod:`explorer.models.registry`: ``register()`` adds the VAEs ``test-tiny``
(a TAESD-family autoencoder, 8 wide), ``test-kl`` and ``test-kl16`` (diffusers AutoencoderKLs, 4
and 16 channels), ``test-vq`` (a diffusers VQModel, /4, 3 channels, 24 codes), the embedders
``test-clip``, ``test-dino`` and ``test-vit``, and the UNet space ``test-tiny-unet`` (a tiny
UNet2DConditionModel + CLIP text encoder over ``test-kl``).
tests/conftest.py calls it; subprocesses get the models with
``EXPLORER_PLUGINS=tests.tiny_models`` (run from the repository root), and so does the app::

    EXPLORER_PLUGINS=tests.tiny_models python app.py
"""

from __future__ import annotations

import torch
import transformers as tf
from diffusers import AutoencoderKL, VQModel
from tokenizers import pre_tokenizers

from explorer.models.registry import (
    EmbedderSpec,
    UNetSpec,
    VAESpec,
    register_embedder,
    register_unet,
    register_vae,
)
from explorer.models.taesd import TAEVariant, TinyAutoencoder

REVISION = "test"  # the weights never change: seeded

VAES: dict[str, VAESpec] = {
    s.name: s
    for s in [
        VAESpec(
            "test-tiny",
            "tiny",
            revision=REVISION,
            half=None,  # float32 on CUDA too: the ZeroGPU harness runs "cuda" on the CPU (slow in fp16)
            description="Tiny random TAESD-family autoencoder, 4 channels (tests only).",
            cpu_seconds_per_megapixel=1.0,  # measured: ~0.8 on a busy 2-core CPU
        ),
        VAESpec(
            "test-kl",
            "kl",
            revision=REVISION,
            description="Tiny random AutoencoderKL, 4 channels (tests only).",
            cpu_seconds_per_megapixel=1.5,  # measured: ~1.2
        ),
        VAESpec(
            "test-kl16",
            "kl",
            latent_channels=16,
            scaling_factor=0.5,
            shift_factor=0.1,
            revision=REVISION,
            description="Tiny random AutoencoderKL, 16 channels (tests only).",
            cpu_seconds_per_megapixel=1.5,
        ),
        VAESpec(
            "test-vq",
            "vq",
            latent_channels=3,
            revision=REVISION,
            description="Tiny random VQModel, /4, 3 channels, 24 codes (tests only).",
            cpu_seconds_per_megapixel=2.0,  # measured: ~1.7
        ),
    ]
}

EMBEDDERS: dict[str, EmbedderSpec] = {
    s.name: s
    for s in [
        EmbedderSpec("test-clip", "clip", None, "Tiny random CLIP, 16-d (tests only).", revision=REVISION, cpu_seconds_per_image=0.001),
        EmbedderSpec("test-dino", "dino", None, "Tiny random DINOv2, 32-d (tests only).", revision=REVISION, cpu_seconds_per_image=0.001),
        EmbedderSpec("test-vit", "vit", None, "Tiny random ViT, 32-d (tests only).", revision=REVISION, cpu_seconds_per_image=0.001),
    ]
}  # fmt: skip


# --------------------------------------------------------------------------- VAEs


def build_vae(spec: VAESpec) -> torch.nn.Module:
    """The seeded module of one of :data:`VAES`."""
    torch.manual_seed(0)
    if spec.kind == "tiny":
        return TinyAutoencoder(TAEVariant(spec.latent_channels, pool=False, width=8))
    if spec.kind == "vq":
        return build_vq(spec)
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        norm_num_groups=4,
        latent_channels=spec.latent_channels,
        scaling_factor=spec.scaling_factor,
        shift_factor=spec.shift_factor,
        sample_size=64,
    )


def build_vq(spec: VAESpec) -> VQModel:
    """A seeded /4 VQModel whose 24 codes are spread like its latents (a random init gives
    codes of size ~1/K, which every pixel would share): so the code map shows structure."""
    torch.manual_seed(0)
    model = VQModel(
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        latent_channels=spec.latent_channels,
        num_vq_embeddings=24,
        scaling_factor=spec.scaling_factor,
        sample_size=64,
    )
    with torch.no_grad():
        x = torch.rand((4, 3, 32, 32), generator=torch.Generator().manual_seed(1)) * 2 - 1
        h = model.encode(x).latents.permute(0, 2, 3, 1).reshape(-1, spec.latent_channels)
        pick = torch.randperm(len(h), generator=torch.Generator().manual_seed(2))[:24]
        model.quantize.embedding.weight.copy_(h[pick])
    return model


# --------------------------------------------------------------------------- embedders


def clip_tokenizer() -> tf.CLIPTokenizer:
    """A byte-level CLIP tokenizer with no merges: every character is a token. Offline."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({c + "</w>": len(alphabet) + i for i, c in enumerate(alphabet)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return tf.CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def processor(family: str) -> object:
    """A small image processor of ``family`` (PIL backend)."""
    if family == "clip":
        return tf.CLIPImageProcessorPil(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        )
    if family == "dino":
        return tf.BitImageProcessorPil(
            size={"shortest_edge": 28},
            crop_size={"height": 28, "width": 28},
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        )
    return tf.ViTImageProcessorPil(size={"height": 32, "width": 32})


def build_embedder(spec: EmbedderSpec) -> tuple[torch.nn.Module, object, object | None]:
    """Seeded model + processor (+ tokenizer) of ``spec.family``."""
    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    torch.manual_seed(0)
    if spec.family == "clip":
        tokenizer = clip_tokenizer()
        eos, bos = tokenizer.eos_token_id, tokenizer.bos_token_id
        text = dict(
            small, intermediate_size=64, vocab_size=len(tokenizer), max_position_embeddings=77
        )
        text.update(bos_token_id=bos, eos_token_id=eos, pad_token_id=eos, projection_dim=16)
        vision = dict(small, intermediate_size=64, image_size=32, patch_size=8, projection_dim=16)
        config = tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        return tf.CLIPModel(config), processor("clip"), tokenizer
    if spec.family == "dino":
        config = tf.Dinov2Config(**small, image_size=28, patch_size=14)
        return tf.Dinov2Model(config), processor("dino"), None
    config = tf.ViTConfig(**small, intermediate_size=64, image_size=32, patch_size=8)
    return tf.ViTModel(config, add_pooling_layer=False), processor("vit"), None


# --------------------------------------------------------------------------- UNet space

UNET = UNetSpec(
    "test-tiny-unet",
    None,
    "test-kl",
    "Tiny random UNet2DConditionModel over test-kl's 4-channel latent (tests only).",
    resolution=64,
    cpu_seconds_per_image=0.2,  # about what a busy 2-core CPU takes
    revision=REVISION,
)


def build_unet() -> tuple[torch.nn.Module, torch.nn.Module, tf.CLIPTokenizer]:
    """Seeded (UNet2DConditionModel, CLIPTextModel, tokenizer), sized as diffusers' own tests:
    an 8x8 latent of 4 channels -> a (64, 4, 4) mid block, a 32-d empty-prompt embedding."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    tokenizer = clip_tokenizer()
    eos, bos = tokenizer.eos_token_id, tokenizer.bos_token_id
    config = tf.CLIPTextConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        vocab_size=len(tokenizer), max_position_embeddings=77, bos_token_id=bos,
        eos_token_id=eos, pad_token_id=eos,
    )  # fmt: skip
    return unet, tf.CLIPTextModel(config), tokenizer


# --------------------------------------------------------------------------- registering


# One build function per model, the same object at every register() (which is then a no-op).
_BUILDS = {
    **{s.name: (lambda s=s: build_vae(s)) for s in VAES.values()},
    **{s.name: (lambda s=s: build_embedder(s)) for s in EMBEDDERS.values()},
    UNET.name: build_unet,
}


def register() -> None:
    """Register every tiny model (again: nothing changes)."""
    for spec in VAES.values():
        register_vae(spec, _BUILDS[spec.name])
    for spec in EMBEDDERS.values():
        register_embedder(spec, _BUILDS[spec.name])
    register_unet(UNET, _BUILDS[UNET.name])
