"""TAESD-family tiny autoencoders (taesd, taesdxl, taesd3, taef1, taef2) loaded from local files.

These are the ``<name>_encoder.pth`` / ``<name>_decoder.pth`` state-dict pairs that users keep in
their ComfyUI or AUTOMATIC1111 ``vae_approx`` folders. The architecture is the one of
Ollin Boer Bohan's TAESD (``taesd.py``), index for index, so the files load with a strict
``load_state_dict``:

Encoder (``nn.Sequential``)::

    0 conv(3→W)  1 block
    2 conv stride 2, no bias   3-5 blocks
    6 conv stride 2, no bias   7-9 blocks
    10 conv stride 2, no bias  11-13 blocks (TAEF2: with pool branch)
    14 conv(W→C)

Decoder (``nn.Sequential``)::

    0 soft clamp tanh(x/3)·3   1 conv(C→W)   2 ReLU
    3-5 blocks (TAEF2: with pool branch)   6 upsample ×2   7 conv, no bias
    8-10 blocks                            11 upsample ×2  12 conv, no bias
    13-15 blocks                           16 upsample ×2  17 conv, no bias
    18 block   19 conv(W→3)

A block is ``ReLU(conv(x) + x)`` with ``conv`` = conv–ReLU–conv–ReLU–conv (3×3, padding 1).
TAEF2's lowest-resolution blocks first run ``x = x + pool(x)``, where ``pool`` is
1×1 conv W→P (no bias), GroupNorm(4, P), ReLU, 1×1 conv P→W (no bias).

Images are RGB in [0, 1] (not diffusers' [-1, 1]); latents are raw (roughly [-3, 3]), with
C = 4 (taesd, taesdxl), 16 (taesd3, taef1) or 32 (taef2) channels. The variant is read from the
tensors' shapes and keys, never from file names.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from explorer.errors import ModelUnavailableError

__all__ = [
    "CHECKPOINT_EXTENSIONS",
    "TAEVariant",
    "TinyAutoencoder",
    "TinyBlock",
    "TinyDecoder",
    "TinyEncoder",
    "detect_variant",
    "find_checkpoints",
    "load_tiny_autoencoder",
    "read_state_dict",
    "resolve_checkpoint_path",
]

#: File extensions that ``find_checkpoints`` / ``resolve_checkpoint_path`` look for, in order of
#: preference when both halves exist with several extensions.
CHECKPOINT_EXTENSIONS: tuple[str, ...] = ("safetensors", "pth", "pt")

_TORCH_EXTENSIONS = frozenset({".pth", ".pt", ".bin"})
_SAFETENSORS_EXTENSIONS = frozenset({".safetensors"})

# Indices of the TAESD layout (see module docstring).
_ENCODER_IN, _ENCODER_OUT = 0, 14
_ENCODER_BLOCKS = (1, 3, 4, 5, 7, 8, 9, 11, 12, 13)
_ENCODER_POOL_BLOCKS = (11, 12, 13)
_DECODER_IN, _DECODER_OUT = 1, 19
_DECODER_BLOCKS = (3, 4, 5, 8, 9, 10, 13, 14, 15, 18)
_DECODER_POOL_BLOCKS = (3, 4, 5)
_POOL_GROUPS = 4

_HALF_NAME = re.compile(r"^(?P<prefix>.+)_(?P<half>encoder|decoder)\.(?P<ext>[A-Za-z0-9]+)$")
_POOL_KEY = re.compile(r"^\d+\.pool\.")

_FAMILY_HINTS: dict[tuple[int, bool], str] = {
    (4, False): "TAESD/TAESDXL-like",
    (16, False): "TAESD3/TAEF1-like",
    (32, True): "TAEF2-like",
}


# --------------------------------------------------------------------------- variant


@dataclass(frozen=True)
class TAEVariant:
    """Architecture of one TAESD-family checkpoint, as read from its tensors.

    ``latent_channels`` is C in the (N, C, H/8, W/8) latents; ``pool`` is True when the
    lowest-resolution blocks carry TAEF2's ``N.pool.*`` branch; ``width`` is the block width
    (64 in every released checkpoint); ``pool_width`` is the pool branch's hidden width
    (256 in TAEF2; ignored when ``pool`` is False).
    """

    latent_channels: int
    pool: bool
    width: int = 64
    pool_width: int = 256

    def describe(self) -> str:
        """One line for humans, e.g. "TAESD-family, 32 latent channels, with pool branch (TAEF2-like)".

        The family name in parentheses is only a guess from the channel count.
        """
        parts = [f"TAESD-family, {self.latent_channels} latent channels"]
        if self.pool:
            parts.append("with pool branch")
        if self.width != 64:
            parts.append(f"{self.width}-wide blocks")
        text = ", ".join(parts)
        hint = _FAMILY_HINTS.get((self.latent_channels, self.pool))
        return f"{text} ({hint})" if hint else text


# --------------------------------------------------------------------------- modules


def _conv(n_in: int, n_out: int, *, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, stride=stride, bias=bias)


class SoftClamp(nn.Module):
    """(N, C, h, w) latent -> same shape, softly squashed into (-3, 3) by tanh(x/3)·3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class TinyBlock(nn.Module):
    """(N, W, H, W') -> (N, W, H, W'): TAESD residual block, ReLU(conv(x) + x), values >= 0.

    With ``pool_width`` set (TAEF2), ``x = x + pool(x)`` runs first, ``pool`` being
    1×1 conv W→P (no bias), GroupNorm(4, P), ReLU, 1×1 conv P→W (no bias).
    """

    def __init__(self, width: int, pool_width: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv(width, width), nn.ReLU(), _conv(width, width), nn.ReLU(), _conv(width, width)
        )
        # TAESD only has a 1x1 skip conv where channel counts differ; they never do here.
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = (
            nn.Sequential(
                nn.Conv2d(width, pool_width, 1, bias=False),
                nn.GroupNorm(_POOL_GROUPS, pool_width),
                nn.ReLU(),
                nn.Conv2d(pool_width, width, 1, bias=False),
            )
            if pool_width is not None
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


class _TAESequential(nn.Sequential):
    """``nn.Sequential`` whose slices are plain ``nn.Sequential`` (our ``__init__`` differs)."""

    def __getitem__(self, idx: int | slice) -> nn.Module:
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)


class TinyEncoder(_TAESequential):
    """(N, 3, H, W) RGB in [0, 1], H and W multiples of 8 -> (N, C, H/8, W/8) raw latents.

    Exact TAESD index layout (see the module docstring), so TAESD ``*_encoder.pth`` state dicts
    load strictly.
    """

    def __init__(self, variant: TAEVariant) -> None:
        w = variant.width
        pw = variant.pool_width if variant.pool else None

        def block(index: int) -> TinyBlock:
            return TinyBlock(w, pw if index in _ENCODER_POOL_BLOCKS else None)

        layers: list[nn.Module] = [_conv(3, w), block(1)]
        for first in (2, 6, 10):
            layers.append(_conv(w, w, stride=2, bias=False))
            layers.extend(block(i) for i in range(first + 1, first + 4))
        layers.append(_conv(w, variant.latent_channels))
        super().__init__(*layers)
        self.variant = variant


class TinyDecoder(_TAESequential):
    """(N, C, h, w) raw latents -> (N, 3, 8h, 8w) RGB, roughly [0, 1] (not clamped here).

    Exact TAESD index layout: index 0 is the tanh(x/3)·3 soft clamp, so TAESD
    ``*_decoder.pth`` state dicts load strictly.
    """

    def __init__(self, variant: TAEVariant) -> None:
        w = variant.width
        pw = variant.pool_width if variant.pool else None

        def block(index: int) -> TinyBlock:
            return TinyBlock(w, pw if index in _DECODER_POOL_BLOCKS else None)

        layers: list[nn.Module] = [SoftClamp(), _conv(variant.latent_channels, w), nn.ReLU()]
        for first in (3, 8, 13):
            layers.extend(block(i) for i in range(first, first + 3))
            layers.append(nn.Upsample(scale_factor=2))
            layers.append(_conv(w, w, bias=False))
        layers.append(block(18))
        layers.append(_conv(w, 3))
        super().__init__(*layers)
        self.variant = variant


class TinyAutoencoder(nn.Module):
    """RGB (N, 3, H, W) in [0, 1] <-> raw latents (N, C, H/8, W/8) of a TAESD-family model."""

    downscale: int = 8

    def __init__(self, variant: TAEVariant) -> None:
        super().__init__()
        self.variant = variant
        self.encoder = TinyEncoder(variant)
        self.decoder = TinyDecoder(variant)

    def _param(self) -> torch.Tensor:
        return next(self.parameters())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1], H and W multiples of 8 -> (N, C, H/8, W/8) raw latents.

        The input is moved to the model's device and dtype; latents come back in that dtype,
        roughly in [-3, 3].
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"encode expects an (N, 3, H, W) RGB batch, got shape {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % self.downscale or w % self.downscale:
            raise ValueError(
                f"encode expects H and W to be multiples of {self.downscale}, got {h}x{w}; "
                "pad or resize the image first"
            )
        p = self._param()
        return self.encoder(x.to(device=p.device, dtype=p.dtype))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) raw latents -> (N, 3, 8h, 8w) RGB clamped to [0, 1].

        Applies the decoder's built-in tanh(x/3)·3 soft clamp to the latents first (index 0 of
        ``self.decoder``). The input is moved to the model's device and dtype.
        """
        c = self.variant.latent_channels
        if z.ndim != 4 or z.shape[1] != c:
            raise ValueError(
                f"decode expects an (N, {c}, h, w) latent batch, got shape {tuple(z.shape)}"
            )
        p = self._param()
        return self.decoder(z.to(device=p.device, dtype=p.dtype)).clamp(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> (N, 3, H, W) reconstruction in [0, 1] (round trip)."""
        return self.decode(self.encode(x))


# --------------------------------------------------------------------------- reading files


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """File path -> {key: tensor} on CPU, dtypes as stored (TAESD files are fp16 or fp32).

    ``.safetensors`` is read with safetensors; ``.pth`` / ``.pt`` / ``.bin`` with
    ``torch.load(map_location="cpu", weights_only=True)`` (no arbitrary pickles). A missing,
    unreadable or corrupt file raises :class:`ModelUnavailableError`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ModelUnavailableError(
            f"Checkpoint file {path} does not exist; check the path, or download the "
            "TAESD encoder/decoder pair into that folder."
        )
    if suffix not in _TORCH_EXTENSIONS | _SAFETENSORS_EXTENSIONS:
        raise ModelUnavailableError(
            f"Cannot read {path.name}: unsupported file type {path.suffix or '(none)'}; "
            "use a .pth, .pt, .bin or .safetensors state dict."
        )
    try:
        if suffix in _SAFETENSORS_EXTENSIONS:
            from safetensors.torch import load_file

            loaded: object = load_file(str(path), device="cpu")
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelUnavailableError(
            f"Could not read {path} as a PyTorch state dict ({type(exc).__name__}: {exc}); "
            "the file is probably corrupt or incomplete, so download it again."
        ) from exc
    # Some tools wrap the weights as {"state_dict": {...}}.
    if isinstance(loaded, Mapping) and set(loaded) == {"state_dict"}:
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise ModelUnavailableError(
            f"{path} does not hold a plain state dict of tensors (got {type(loaded).__name__}); "
            "use the encoder/decoder .pth or .safetensors files of a TAESD-family model."
        )
    return dict(loaded)


# --------------------------------------------------------------------------- detection


def _expected_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _key_sample(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(sorted(keys)[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _not_taesd(half: str, sd: Mapping[str, torch.Tensor], problem: str) -> ModelUnavailableError:
    keys = list(sd)
    hint = ""
    if any(k.startswith(("encoder.layers.", "decoder.layers.")) for k in keys):
        hint = (
            " Its keys look like a diffusers AutoencoderTiny (encoder.layers.*): load that "
            "folder with diffusers instead, or use the original TAESD *_encoder/*_decoder files."
        )
    return ModelUnavailableError(
        f"The {half} checkpoint is not a TAESD-family {half}: {problem} "
        f"(keys start with {_key_sample(keys) or 'nothing, it is empty'}). "
        f"Use the matching <name>_encoder/<name>_decoder files of taesd, taesdxl, taesd3, "
        f"taef1 or taef2.{hint}"
    )


def _shape(sd: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...] | None:
    t = sd.get(key)
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


def detect_variant(
    encoder_sd: Mapping[str, torch.Tensor], decoder_sd: Mapping[str, torch.Tensor]
) -> TAEVariant:
    """Encoder + decoder state dicts -> their :class:`TAEVariant`, from tensor shapes and keys.

    Raises :class:`ModelUnavailableError` naming the problem when either dict is not
    TAESD-shaped (missing/unexpected keys, wrong shapes) or the two halves disagree
    (different latent channels, block width, or pool branch).
    """
    enc_in = _shape(encoder_sd, f"{_ENCODER_IN}.weight")
    enc_out = _shape(encoder_sd, f"{_ENCODER_OUT}.weight")
    if enc_in is None or enc_out is None:
        raise _not_taesd(
            "encoder", encoder_sd, f"it lacks {_ENCODER_IN}.weight / {_ENCODER_OUT}.weight"
        )
    if len(enc_in) != 4 or enc_in[1:] != (3, 3, 3) or len(enc_out) != 4 or enc_out[2:] != (3, 3):
        raise _not_taesd(
            "encoder",
            encoder_sd,
            f"{_ENCODER_IN}.weight has shape {enc_in} and {_ENCODER_OUT}.weight {enc_out}, "
            "expected (W, 3, 3, 3) and (C, W, 3, 3)",
        )
    dec_in = _shape(decoder_sd, f"{_DECODER_IN}.weight")
    dec_out = _shape(decoder_sd, f"{_DECODER_OUT}.weight")
    if dec_in is None or dec_out is None:
        raise _not_taesd(
            "decoder", decoder_sd, f"it lacks {_DECODER_IN}.weight / {_DECODER_OUT}.weight"
        )
    if len(dec_in) != 4 or dec_in[2:] != (3, 3) or len(dec_out) != 4 or dec_out[0] != 3:
        raise _not_taesd(
            "decoder",
            decoder_sd,
            f"{_DECODER_IN}.weight has shape {dec_in} and {_DECODER_OUT}.weight {dec_out}, "
            "expected (W, C, 3, 3) and (3, W, 3, 3)",
        )

    enc_latent, dec_latent = enc_out[0], dec_in[1]
    if enc_latent != dec_latent:
        raise ModelUnavailableError(
            f"The encoder makes {enc_latent}-channel latents but the decoder expects "
            f"{dec_latent} channels, so the two files belong to different models; use the "
            "encoder and decoder of the same release (e.g. taef2_encoder + taef2_decoder)."
        )
    enc_width, dec_width = enc_in[0], dec_in[0]
    if enc_width != dec_width:
        raise ModelUnavailableError(
            f"The encoder's blocks are {enc_width} channels wide but the decoder's are "
            f"{dec_width}, so the two files belong to different models; use the encoder and "
            "decoder of the same release."
        )
    enc_pool = any(_POOL_KEY.match(k) for k in encoder_sd)
    dec_pool = any(_POOL_KEY.match(k) for k in decoder_sd)
    if enc_pool != dec_pool:
        which, other = ("encoder", "decoder") if enc_pool else ("decoder", "encoder")
        raise ModelUnavailableError(
            f"The {which} has TAEF2's pool branch but the {other} does not, so the two files "
            "belong to different models; use the encoder and decoder of the same release."
        )
    pool_width = 256
    if enc_pool:
        pool_shape = _shape(encoder_sd, f"{_ENCODER_POOL_BLOCKS[0]}.pool.0.weight")
        if pool_shape is None or len(pool_shape) != 4 or pool_shape[0] % _POOL_GROUPS:
            raise _not_taesd(
                "encoder",
                encoder_sd,
                f"its pool branch has an unexpected layout ({_ENCODER_POOL_BLOCKS[0]}"
                f".pool.0.weight: {pool_shape})",
            )
        pool_width = pool_shape[0]

    variant = TAEVariant(
        latent_channels=enc_latent, pool=enc_pool, width=enc_width, pool_width=pool_width
    )
    with torch.device("meta"):
        expected = {
            "encoder": _expected_shapes(TinyEncoder(variant)),
            "decoder": _expected_shapes(TinyDecoder(variant)),
        }
    for half, sd in (("encoder", encoder_sd), ("decoder", decoder_sd)):
        want = expected[half]
        missing = [k for k in want if k not in sd]
        unexpected = [k for k in sd if k not in want]
        wrong = [k for k in want if k in sd and tuple(sd[k].shape) != want[k]]
        problems = []
        if missing:
            problems.append(f"missing {_key_sample(missing)}")
        if unexpected:
            problems.append(f"unexpected {_key_sample(unexpected)}")
        if wrong:
            k = wrong[0]
            problems.append(
                f"{len(wrong)} tensor(s) of the wrong shape, e.g. {k} is "
                f"{tuple(sd[k].shape)} instead of {want[k]}"
            )
        if problems:
            raise _not_taesd(
                half,
                sd,
                f"its keys do not match the {variant.describe()} layout: " + "; ".join(problems),
            )
    return variant


# --------------------------------------------------------------------------- finding files


def _sibling(path: Path, half: str, prefix: str, ext: str) -> Path | None:
    """The ``<prefix>_<half>.<ext>`` next to ``path``, same extension first."""
    exts = [ext, *(e for e in CHECKPOINT_EXTENSIONS if e != ext.lower())]
    for e in exts:
        candidate = path.with_name(f"{prefix}_{half}.{e}")
        if candidate.is_file():
            return candidate
    return None


def _pairs_in(folder: Path) -> list[tuple[str, Path, Path]]:
    pairs = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        m = _HALF_NAME.match(entry.name)
        if (
            m is None
            or m["half"] != "encoder"
            or m["ext"].lower() not in CHECKPOINT_EXTENSIONS
            or not entry.is_file()
        ):
            continue
        decoder = _sibling(entry, "decoder", m["prefix"], m["ext"])
        if decoder is not None:
            pairs.append((m["prefix"], entry, decoder))
    # One pair per prefix: prefer the extension listed first in CHECKPOINT_EXTENSIONS.
    best: dict[str, tuple[str, Path, Path]] = {}
    for prefix, enc, dec in pairs:
        rank = CHECKPOINT_EXTENSIONS.index(enc.suffix[1:].lower())
        if prefix not in best or rank < CHECKPOINT_EXTENSIONS.index(
            best[prefix][1].suffix[1:].lower()
        ):
            best[prefix] = (prefix, enc, dec)
    return list(best.values())


def find_checkpoints(folder: str | Path) -> dict[str, tuple[Path, Path]]:
    """Folder -> {prefix: (encoder_path, decoder_path)} for every ``<prefix>_encoder.<ext>``
    with a matching ``<prefix>_decoder.<ext>`` (ext: safetensors, pth, pt), sorted by name.

    Looks in ``folder`` and one level of sub-folders (hidden ones skipped). A pair in a
    sub-folder whose prefix is already taken is keyed ``"<sub-folder>/<prefix>"``. Lone halves
    are ignored; a missing folder gives ``{}``.
    """
    root = Path(folder)
    if not root.is_dir():
        return {}
    found: dict[str, tuple[Path, Path]] = {}
    for prefix, enc, dec in _pairs_in(root):
        found[prefix] = (enc, dec)
    try:
        subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        subs = []
    for sub in subs:
        for prefix, enc, dec in _pairs_in(sub):
            key = prefix if prefix not in found else f"{sub.name}/{prefix}"
            found[key] = (enc, dec)
    return dict(sorted(found.items()))


def resolve_checkpoint_path(path: str | Path) -> tuple[Path, Path]:
    """Encoder file, decoder file, or folder with exactly one pair -> (encoder_path, decoder_path).

    Raises :class:`ModelUnavailableError` with a sentence saying what to do when the path is
    missing, the sibling half is missing, the file name is not ``<name>_encoder|decoder.<ext>``,
    or a folder holds no pair or several pairs (listed).
    """
    p = Path(path).expanduser()
    if p.is_dir():
        pairs = find_checkpoints(p)
        if not pairs:
            raise ModelUnavailableError(
                f"No TAESD-family checkpoint pair found in {p}; put <name>_encoder.pth and "
                "<name>_decoder.pth (or .safetensors) there, e.g. taef2_encoder.pth and "
                "taef2_decoder.pth."
            )
        if len(pairs) > 1:
            names = ", ".join(pairs)
            raise ModelUnavailableError(
                f"{p} holds several TAESD-family checkpoint pairs ({names}); pass one of their "
                "encoder or decoder files instead of the folder."
            )
        return next(iter(pairs.values()))
    if not p.is_file():
        raise ModelUnavailableError(
            f"{p} does not exist; pass a TAESD-family encoder or decoder file "
            "(e.g. taef2_encoder.pth) or the folder that holds the pair."
        )
    m = _HALF_NAME.match(p.name)
    if m is None or m["ext"].lower() not in CHECKPOINT_EXTENSIONS:
        raise ModelUnavailableError(
            f"Cannot tell which half of a TAESD-family model {p.name} is; name the files "
            "<name>_encoder.<ext> and <name>_decoder.<ext> (ext: pth, pt or safetensors)."
        )
    other = "decoder" if m["half"] == "encoder" else "encoder"
    sibling = _sibling(p, other, m["prefix"], m["ext"])
    if sibling is None:
        raise ModelUnavailableError(
            f"Found {p.name} but no matching {m['prefix']}_{other}.{m['ext']} next to it in "
            f"{p.parent}; download the {other} of the same model into that folder."
        )
    return (p, sibling) if m["half"] == "encoder" else (sibling, p)


# --------------------------------------------------------------------------- loading


def load_tiny_autoencoder(
    encoder_path: str | Path,
    decoder_path: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> TinyAutoencoder:
    """Encoder + decoder files -> a frozen, eval-mode :class:`TinyAutoencoder` on device/dtype.

    The variant (latent channels, pool branch, width) comes from the tensors. Unreadable files,
    mismatched halves or non-TAESD checkpoints raise :class:`ModelUnavailableError`.
    """
    encoder_sd = read_state_dict(encoder_path)
    decoder_sd = read_state_dict(decoder_path)
    variant = detect_variant(encoder_sd, decoder_sd)
    model = TinyAutoencoder(variant)
    for half, module, sd, path in (
        ("encoder", model.encoder, encoder_sd, encoder_path),
        ("decoder", model.decoder, decoder_sd, decoder_path),
    ):
        try:
            module.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise ModelUnavailableError(
                f"{path} does not fit a TAESD-family {half} ({variant.describe()}): {exc}. "
                "The checkpoint is not TAESD-family; use the original <name>_encoder/_decoder "
                "files of taesd, taesdxl, taesd3, taef1 or taef2."
            ) from exc
    model.to(device=device, dtype=dtype)
    model.eval()
    model.requires_grad_(False)
    return model
