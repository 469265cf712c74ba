"""TAESD-family checkpoints on disk: finding them, reading them, telling the variants apart.

Two formats hold the same weights:

* the original ``<name>_encoder.pth`` / ``<name>_decoder.pth`` state-dict pairs (also
  ``.safetensors``) that ComfyUI and AUTOMATIC1111 users keep in a ``vae_approx`` folder;
* diffusers ``AutoencoderTiny`` folders (``config.json`` + ``diffusion_pytorch_model.safetensors``,
  as on the Hub for taesd, taesdxl, taesd3 and taef1), whose keys are remapped:
  ``encoder.layers.N.*`` -> ``N.*`` and ``decoder.layers.N.*`` -> ``(N+1).*`` (TAESD's decoder has
  its soft clamp at index 0, which diffusers applies outside ``layers``).

Both load into :class:`explorer.models.taesd.TinyAutoencoder`. The variant (latent channels, block width,
TAEF2's pool branch) is read from the tensors' shapes and keys, never from file names. Weights are
read with safetensors or ``torch.load(weights_only=True)``: no arbitrary pickles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file

from explorer.core.errors import ModelUnavailableError
from explorer.models.taesd import POOL_GROUPS, Decoder, Encoder, TAEVariant, TinyAutoencoder

__all__ = [
    "CHECKPOINT_EXTENSIONS",
    "detect_variant",
    "find_checkpoints",
    "from_diffusers",
    "load_diffusers_tiny",
    "load_tiny_autoencoder",
    "read_state_dict",
    "resolve_checkpoint_path",
]

#: Extensions ``find_checkpoints`` / ``resolve_checkpoint_path`` look for, preferred first.
CHECKPOINT_EXTENSIONS: tuple[str, ...] = ("safetensors", "pth", "pt")

_TORCH_EXTENSIONS = frozenset({".pth", ".pt", ".bin"})
_SAFETENSORS_EXTENSIONS = frozenset({".safetensors"})

# Indices of the TAESD layout (see explorer.models.taesd).
_ENCODER_IN, _ENCODER_OUT = 0, 14
_ENCODER_POOL_BLOCK = 11
_DECODER_IN, _DECODER_OUT = 1, 19

_HALF_NAME = re.compile(r"^(?P<prefix>.+)_(?P<half>encoder|decoder)\.(?P<ext>[A-Za-z0-9]+)$")
_POOL_KEY = re.compile(r"^\d+\.pool\.")
_DIFFUSERS_KEY = re.compile(r"^(?P<half>encoder|decoder)\.layers\.(?P<index>\d+)\.(?P<rest>.+)$")
# What a diffusers AutoencoderTiny config must say for the TAESD layout to apply (its block
# counts and widths are checked through the tensors).
_DIFFUSERS_CONFIG = {
    "act_fn": "relu",
    "upsample_fn": "nearest",
    "upsampling_scaling_factor": 2,
    "in_channels": 3,
    "out_channels": 3,
}


# --------------------------------------------------------------------------- reading files


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """File path -> {key: tensor} on CPU, dtypes as stored.

    ``.safetensors`` is read with safetensors; ``.pth`` / ``.pt`` / ``.bin`` with
    ``torch.load(map_location="cpu", weights_only=True)``. A missing, unreadable or corrupt file
    raises :class:`ModelUnavailableError`.
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


def _key_sample(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(sorted(keys)[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _not_taesd(half: str, sd: Mapping[str, torch.Tensor], problem: str) -> ModelUnavailableError:
    keys = list(sd)
    hint = ""
    if any(_DIFFUSERS_KEY.match(k) for k in keys):
        hint = (
            " Its keys look like a diffusers AutoencoderTiny (encoder.layers.*): give the "
            "diffusers folder (with its config.json) instead, or the original TAESD "
            "*_encoder/*_decoder files."
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


def _check_layout(variant: TAEVariant, half: str, sd: Mapping[str, torch.Tensor]) -> None:
    """Every key of the ``variant``'s ``half`` present with its shape, and no other key."""
    pool_width = variant.pool_width if variant.pool else None
    build = Encoder if half == "encoder" else Decoder
    with torch.device("meta"):
        want = {
            k: tuple(v.shape)
            for k, v in build(variant.latent_channels, variant.width, pool_width)
            .state_dict()
            .items()
        }
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
        pool_shape = _shape(encoder_sd, f"{_ENCODER_POOL_BLOCK}.pool.0.weight")
        if pool_shape is None or len(pool_shape) != 4 or pool_shape[0] % POOL_GROUPS:
            raise _not_taesd(
                "encoder",
                encoder_sd,
                f"its pool branch has an unexpected layout ({_ENCODER_POOL_BLOCK}"
                f".pool.0.weight: {pool_shape})",
            )
        pool_width = pool_shape[0]

    variant = TAEVariant(
        latent_channels=enc_latent, pool=enc_pool, width=enc_width, pool_width=pool_width
    )
    _check_layout(variant, "encoder", encoder_sd)
    _check_layout(variant, "decoder", decoder_sd)
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


def _build(
    encoder_sd: Mapping[str, torch.Tensor],
    decoder_sd: Mapping[str, torch.Tensor],
    where: tuple[str, str],
) -> TinyAutoencoder:
    """The :class:`TinyAutoencoder` the two state dicts describe, loaded strictly, frozen, eval."""
    variant = detect_variant(encoder_sd, decoder_sd)
    model = TinyAutoencoder(variant)
    for half, module, sd, source in (
        ("encoder", model.encoder, encoder_sd, where[0]),
        ("decoder", model.decoder, decoder_sd, where[1]),
    ):
        try:
            module.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise ModelUnavailableError(
                f"{source} does not fit a TAESD-family {half} ({variant.describe()}): {exc}. "
                "The checkpoint is not TAESD-family; use the original <name>_encoder/_decoder "
                "files of taesd, taesdxl, taesd3, taef1 or taef2."
            ) from exc
    return model.eval().requires_grad_(False)


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
    model = _build(
        read_state_dict(encoder_path),
        read_state_dict(decoder_path),
        (str(encoder_path), str(decoder_path)),
    )
    return model.to(device=device, dtype=dtype)


def from_diffusers(
    state_dict: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A diffusers ``AutoencoderTiny`` state dict -> TAESD-keyed (encoder, decoder) state dicts:
    ``encoder.layers.N.*`` -> ``N.*``, ``decoder.layers.N.*`` -> ``(N+1).*``."""
    halves: dict[str, dict[str, torch.Tensor]] = {"encoder": {}, "decoder": {}}
    other = []
    for key, value in state_dict.items():
        m = _DIFFUSERS_KEY.match(key)
        if m is None:
            other.append(key)
            continue
        index = int(m["index"]) + (m["half"] == "decoder")
        halves[m["half"]][f"{index}.{m['rest']}"] = value
    if other or not halves["encoder"] or not halves["decoder"]:
        raise ModelUnavailableError(
            "The weights are not a diffusers AutoencoderTiny's (keys "
            f"{_key_sample(other or list(state_dict)) or 'none'}): give a TAESD-family "
            "AutoencoderTiny folder, or the original <name>_encoder/<name>_decoder files."
        )
    return halves["encoder"], halves["decoder"]


def load_diffusers_tiny(
    config_path: str | Path, weights_path: str | Path
) -> tuple[TinyAutoencoder, dict]:
    """A diffusers ``AutoencoderTiny`` (its ``config.json`` and safetensors weights) -> a frozen
    :class:`TinyAutoencoder` on the CPU in float32, and the config (``scaling_factor``,
    ``shift_factor``). Raises :class:`ModelUnavailableError` for another layout."""
    try:
        config = json.loads(Path(config_path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(
            f"Could not read {config_path}: {exc}. Check the folder or download it again."
        ) from exc
    if config.get("_class_name", "AutoencoderTiny") != "AutoencoderTiny":
        raise ModelUnavailableError(
            f"{config_path} describes a {config['_class_name']}, not an AutoencoderTiny."
        )
    odd = {k: config[k] for k, v in _DIFFUSERS_CONFIG.items() if config.get(k, v) != v}
    if odd:
        raise ModelUnavailableError(
            f"{config_path} asks for {odd}: only the TAESD layout ("
            + ", ".join(f"{k}={v}" for k, v in _DIFFUSERS_CONFIG.items())
            + ") is supported."
        )
    encoder_sd, decoder_sd = from_diffusers(read_state_dict(weights_path))
    return _build(encoder_sd, decoder_sd, (str(weights_path), str(weights_path))), config
