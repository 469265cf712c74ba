"""Command line: `python -m explorer download | roundtrip | models`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import ExplorerError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m explorer", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("download", help="prefetch the default models into the Hugging Face cache")
    d.add_argument("models", nargs="*", help="registry names (default: every default model)")

    m = sub.add_parser("models", help="list the models the explorer knows")
    m.add_argument("--models-dir", default=None, help="also list checkpoints in this folder")

    r = sub.add_parser("roundtrip", help="encode and decode one image; print PSNR and SSIM")
    r.add_argument("image")
    r.add_argument(
        "--model",
        default=None,
        help="registry name, Hub id, or path to a local checkpoint file or folder",
    )
    r.add_argument("--out", required=True, help="where to write the reconstruction (PNG/JPEG)")
    r.add_argument("--resolution", type=int, default=512)
    r.add_argument("--mode", choices=["square", "fit"], default="square")
    r.add_argument("--models-dir", default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "download":
            from .models import download

            fetched = download(args.models or None)
            print(f"cached {len(fetched)} model(s): {', '.join(fetched)}")
        elif args.command == "models":
            from .models import available_models, resolve

            for name in available_models(args.models_dir):
                spec = resolve(name, args.models_dir)
                print(f"{name:24s} {spec.source:50s} {spec.description}")
        elif args.command == "roundtrip":
            from PIL import Image

            from . import pipeline
            from .models import default_vae

            out = Path(args.out)
            if out.suffix.lower() not in Image.registered_extensions():
                raise ExplorerError(
                    f"Cannot write {out.name}: unknown image file extension "
                    f"{out.suffix or '(none)'!r}. Give --out a .png or .jpg path."
                )
            model = args.model or default_vae(args.models_dir)
            rt = pipeline.roundtrip(
                args.image, model, args.resolution, args.mode, folder=args.models_dir
            )
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                rt.reconstruction.save(out)
            except OSError as exc:
                raise ExplorerError(f"Cannot write {out}: {exc}. Check the --out path.") from exc
            print(f"PSNR {rt.psnr:.2f} SSIM {rt.ssim:.4f}")
            print(
                f"model {rt.model}, compression {rt.ratio:.1f}x, encode {rt.encode_s * 1000:.0f} ms, "
                f"decode {rt.decode_s * 1000:.0f} ms -> {out}",
                file=sys.stderr,
            )
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
