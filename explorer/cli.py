"""Command line: `python -m explorer [--pack DIR] download | models | roundtrip | atlas |
unet-sweep | autoencoders | perturb | classpack | lesson`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from explorer.core import settings
from explorer.core.errors import ExplorerError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m explorer", description=__doc__)
    p.add_argument(
        "--pack",
        default=None,
        metavar="DIR",
        help="run on a class pack (as EXPLORER_PACK=DIR): its models and embeddings, no network",
    )
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

    a = sub.add_parser(
        "atlas",
        help="embed a labelled image set in VAE / CLIP / DINOv2 space; write points.csv and metrics.csv",
    )
    a.add_argument(
        "source",
        help="a folder of class sub-folders, a .zip of them, a Hub dataset id, 'bundled' (the teaching set) or 'augmented'",
    )
    a.add_argument(
        "--out", required=True, help="folder to write points.csv, metrics.csv, atlas.html, ..."
    )
    for fam, what in (
        ("vae", "VAE"),
        ("clip", "CLIP"),
        ("dino", "DINOv2"),
        ("vit", "supervised ViT"),
    ):
        a.add_argument(
            f"--{fam}",
            default=None,
            metavar="MODEL",
            help=f"{what} model: registry name, Hub id or local path",
        )
    a.add_argument(
        "--unet",
        default=None,
        metavar="MODEL",
        help="a UNet space (e.g. sd15-unet, or sd15-unet@t100/up1/s4 for one block of a "
        "sweep): the SD UNet's pooled features of the noised latent",
    )
    a.add_argument(
        "--timestep",
        type=int,
        default=None,
        metavar="T",
        help="the UNet space's noise timestep, 0-999 (default 200; the app offers 50, 200, 500)",
    )
    a.add_argument(
        "--baselines",
        default=None,
        metavar="NAMES",
        help="weight-free control spaces to add, comma-separated: pixels, colour, texture (or "
        "all): what raw pixels, the palette and edges alone give",
    )
    a.add_argument("--method", choices=["umap", "pca", "tsne"], default="umap")
    a.add_argument("--max-images", type=int, default=None)
    a.add_argument("--per-class", type=int, default=20, help="images per class for a Hub dataset")
    a.add_argument("--split", default="train", help="split of a Hub dataset")
    a.add_argument("--models-dir", default=None)
    a.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="where the embedding models run: this process, or a Ray cluster (pip install .[ray])",
    )
    a.add_argument(
        "--address",
        default=None,
        help="with --engine ray: the cluster (auto, or ray://head:10001); default a local Ray",
    )

    sw = sub.add_parser(
        "unet-sweep",
        help="score a UNet's blocks x timesteps x prompts on a labelled set (kNN-5 and a linear "
        "probe); write sweep.csv, references.csv and sweep.html",
    )
    sw.add_argument("source", help="as for atlas: a folder, a .zip, a Hub dataset id or 'bundled'")
    sw.add_argument("--out", required=True, help="folder to write sweep.csv, references.csv, ...")
    sw.add_argument(
        "--unet", default=None, metavar="MODEL", help="a UNet space (default: the usable one)"
    )
    sw.add_argument(
        "--timesteps", default=None, metavar="T,T,...", help="default 0,50,100,200,400,600,800"
    )
    sw.add_argument(
        "--blocks",
        default=None,
        metavar="B,B,...",
        help="e.g. down0..3,mid,up0..3 (default: every block)",
    )
    sw.add_argument(
        "--seeds", type=int, default=4, help="noise draws averaged per cell (default 4)"
    )
    sw.add_argument(
        "--prompts",
        default=None,
        metavar="P,P,...",
        help="empty,neutral,label (default: all three)",
    )
    sw.add_argument(
        "--references",
        default=None,
        metavar="SPACE,...",
        help="spaces scored beside the sweep: vae/clip/dino refs and the baselines pixels, colour, "
        "texture (default: the UNet's own VAE and the three baselines; 'none' for none)",
    )
    sw.add_argument("--max-images", type=int, default=None)
    sw.add_argument("--per-class", type=int, default=20, help="images per class for a Hub dataset")
    sw.add_argument("--split", default="train", help="split of a Hub dataset")
    sw.add_argument("--models-dir", default=None)
    sw.add_argument("--engine", choices=["local", "ray"], default="local")
    sw.add_argument("--address", default=None, help="with --engine ray: the cluster")

    ae = sub.add_parser(
        "autoencoders",
        help="train AE, VAE and VQ-VAE on the 8x8 digits; write autoencoders.csv and figures",
    )
    ae.add_argument("--out", required=True, help="folder to write autoencoders.csv and PNGs")
    ae.add_argument("--epochs", type=int, default=None, help="epochs per model (default 150)")
    ae.add_argument("--seed", type=int, default=0)

    pt = sub.add_parser(
        "perturb",
        help="perturb one photo along ladders (blur, flip, ...); write perturb.csv of how far "
        "each space moves, in units of an unrelated photo",
    )
    pt.add_argument("image")
    pt.add_argument("--out", required=True, help="folder to write perturb.csv")
    for fam, what in (("vae", "VAE"), ("clip", "CLIP"), ("dino", "DINOv2")):
        pt.add_argument(
            f"--{fam}",
            default=None,
            metavar="MODEL",
            help=f"{what} model: registry name, Hub id or local path",
        )
    pt.add_argument(
        "--baselines",
        default=None,
        metavar="NAMES",
        help="control spaces to measure too, comma-separated: pixels, colour, texture (or all)",
    )
    pt.add_argument("--models-dir", default=None)

    cp = sub.add_parser(
        "classpack",
        help="prepare a class pack once with internet: the models, the sets embedded in every "
        "space, the lesson's results; then EXPLORER_PACK=DIR python app.py works offline",
    )
    cp.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    cp.add_argument(
        "--set",
        action="append",
        dest="sets",
        metavar="bundled|FOLDER|ZIP",
        help="a set to embed in every space (repeat for more; default: bundled, the teaching set)",
    )
    cp.add_argument(
        "--models",
        default="default",
        metavar="default|all|NAMES",
        help="default (the lesson's and atlas's models), all (every registry model but gated "
        "ones) or comma-separated names (a UNet space such as sd15-unet only when named)",
    )
    cp.add_argument(
        "--device",
        choices=["cpu", "auto"],
        default="cpu",
        help="where the embeddings are computed: cpu (default) gives the float32 rows a "
        "classroom CPU reads; auto uses a GPU where there is one (half-precision rows)",
    )

    ls = sub.add_parser(
        "lesson",
        help="run every step of the guided lesson and write the class handout (one HTML file: "
        "figures, tables, numbers, questions and this run's answers; prints one step per page)",
    )
    ls.add_argument("--out", required=True, help="the HTML file to write (at most 15 MB)")
    ls.add_argument(
        "--model", default=None, help="the lesson's VAE (default: the first usable one)"
    )
    ls.add_argument("--models-dir", default=None)
    return p


def _baselines(text: str | None) -> list[str]:
    """``--baselines pixels,colour`` -> ``["pixels:16x16-rgb", "colour:hsv-8x4x4"]`` (``all``:
    the three), checked."""
    from explorer.spaces.baselines import BASELINES, MODELS

    names = [t.strip().lower() for t in (text or "").split(",") if t.strip()]
    if names == ["all"]:
        names = list(BASELINES)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ExplorerError(
            f"Unknown control space {unknown[0]!r} in --baselines: use {', '.join(BASELINES)} "
            "(comma-separated) or all."
        )
    return [f"{n}:{MODELS[n]}" for n in dict.fromkeys(names)]


def _classpack(args: argparse.Namespace) -> None:
    from explorer.classpack import build_pack

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    manifest = build_pack(args.out, sets=args.sets or ["bundled"], models=args.models, log=log)
    sizes = manifest["sizes"]
    parts = ", ".join(f"{k} {v / 2**20:,.1f} MiB" for k, v in sorted(sizes.items()))
    sets = ", ".join(f"{s['name']} ({s['images']} images)" for s in manifest["sets"])
    print(
        f"wrote the class pack {args.out}: {manifest['size_bytes'] / 2**20:,.1f} MiB "
        f"({manifest['size_bytes']:,} bytes; {parts}) in {len(manifest['files'])} files; "
        f"{len(manifest['models'])} model(s), {sets}, {len(manifest['spaces'])} space(s)"
    )
    print(f"open it with: EXPLORER_PACK={args.out} python app.py", file=sys.stderr)


def _lesson(args: argparse.Namespace) -> None:
    from explorer.models.registry import default_vae
    from explorer.ui.lesson import handout, questions, results
    from explorer.ui.lesson import views as lt

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ExplorerError(f"Cannot write {out.name}: give --out a .html path.")
    model = args.model or default_vae(args.models_dir)
    ran = {}
    for n in lt.RUNNABLE:
        print(f"step {n}: {lt.STEPS[n].title} ...", file=sys.stderr, flush=True)
        k = results.key(n, model, args.models_dir)
        entry = handout.Ran(n, "" if n == 1 else model, k[3])
        try:
            entry.result = lt.run_step(n, model, args.models_dir)
            entry.answer = questions.answer(n, entry.result)
        except Exception as exc:  # the handout says which step failed and why
            entry.error = str(exc) if isinstance(exc, ExplorerError) else type(exc).__name__
            print(f"  not done: {entry.error}", file=sys.stderr)
        ran[n] = entry
    path = handout.write(ran, model, out)
    done = sum(1 for r in ran.values() if not r.error)
    print(
        f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB, cap "
        f"{handout.CAP_BYTES / 2**20:.0f} MB): {done} of {len(ran)} steps on {model}"
    )


def _autoencoders(args: argparse.Namespace) -> None:
    from explorer.playground import cache as playground_cache
    from explorer.playground import figures as playground_figures

    try:
        path = playground_figures.write_report(
            args.out, args.epochs, args.seed, cache=playground_cache.default_cache()
        )
    except ValueError as exc:  # TrainConfig's range checks
        raise ExplorerError(f"{exc}. Try --epochs between 1 and 2000 and --seed >= 0.") from exc
    except OSError as exc:
        raise ExplorerError(f"Cannot write to {args.out}: {exc}. Check the --out path.") from exc
    with path.open() as fh:
        print(fh.read().rstrip())
    print(f"wrote {path} and the figures beside it", file=sys.stderr)


def _perturb(args: argparse.Namespace) -> None:
    from explorer.images import io as imaging
    from explorer.models.registry import default_vae
    from explorer.perturb import ladder as perturb
    from explorer.perturb import measure as perturb_lab
    from explorer.spaces.cache import EmbeddingCache

    chosen = [
        f"{fam}:{getattr(args, fam)}" for fam in ("vae", "clip", "dino") if getattr(args, fam)
    ]
    spaces = (chosen or [f"vae:{default_vae(args.models_dir)}"]) + _baselines(args.baselines)
    image = imaging.load_image(args.image)
    refs = perturb_lab.references(image)
    cache = EmbeddingCache()
    embed = {s: perturb_lab.space_embedder(s, args.models_dir, cache) for s in spaces}
    try:
        path = perturb.run(
            image, args.out, embed, refs.unrelated, refs.same_meaning or None, perturb_lab.SIZE
        )
    except OSError as exc:
        raise ExplorerError(f"Cannot write to {args.out}: {exc}. Check the --out path.") from exc
    if refs.source:
        print(
            f"{args.image} is the teaching set's {refs.source} ({refs.meaning}): "
            f"{len(refs.same_meaning)} other photo(s) of that meaning form the same_meaning row",
            file=sys.stderr,
        )
    print(f"wrote {path} ({', '.join(spaces)})")


def _atlas(args: argparse.Namespace) -> None:
    if args.method == "umap":
        from explorer.analysis.projection import precompile_umap

        # With a cold numba cache, a child compiles UMAP on another core while this process
        # imports, reads the set and embeds it; the projection waits for it and loads the code.
        precompile_umap()
    from tqdm import tqdm

    from explorer import atlas, datasets
    from explorer.spaces.cache import EmbeddingCache

    chosen = [
        f"{fam}:{getattr(args, fam)}"
        for fam in ("vae", "clip", "dino", "vit")
        if getattr(args, fam)
    ]
    if args.timestep is not None and not args.unet:
        raise ExplorerError("--timestep sets the UNet space's noise level: give --unet MODEL too.")
    if args.unet:
        from explorer.spaces import unet, unet_blocks

        ref = unet_blocks.parse_ref(args.unet)  # name@tT, or a block ref: name@tT/up1/s4
        if args.timestep is not None:
            ref = ref.with_(timesteps=(unet.split_model(f"{ref.name}@t{args.timestep}")[1],))
        chosen.append(f"unet:{ref.ref}")
    spaces = (chosen or atlas.default_spaces(args.models_dir)) + _baselines(args.baselines)
    runner = None
    if args.engine == "ray":
        from explorer.spaces.ray_engine import RayEngine, require_ray

        require_ray()  # before reading the set: one sentence on how to install it
        runner = RayEngine(address=args.address).start()  # and on a cluster it cannot reach
    elif args.address:
        raise ExplorerError("--address only applies with --engine ray.")
    kw = {"max_images": args.max_images}
    if not Path(args.source).exists() and args.source not in ("bundled", "augmented"):
        kw.update(per_class=args.per_class, split=args.split)
    image_set = datasets.load_source(args.source, **kw)
    print(image_set.summary(), file=sys.stderr)
    for ref in spaces:
        if ref.startswith("unet:"):
            from explorer.spaces import unet

            note = unet.cpu_estimate_note(ref.split(":", 1)[1], len(image_set))
            if note:
                print(note, file=sys.stderr)
    with tqdm(total=100, desc="embedding", unit="%", file=sys.stderr) as bar:

        def progress(f: float, desc: str) -> None:
            bar.set_description(desc[:60])
            bar.n = round(100 * min(max(f, 0.0), 1.0))
            bar.refresh()

        built = atlas.build(
            image_set,
            spaces,
            args.method,
            args.models_dir,
            EmbeddingCache(),
            progress,
            runner=runner,
        )
        from explorer.ui.atlas.payload import colour_note
        from explorer.ui.atlas.views import export_verdict

        verdict = export_verdict(built, args.method)
        files = atlas.save(built, args.out, args.method, verdict, colour_note(built))
    for ref, msg in built.failures.items():
        print(f"warning: {ref} left out: {msg}", file=sys.stderr)
    print(atlas.metrics_table(built, args.method).to_string(index=False))
    if len(built.spaces) > 1:
        print()
        print(atlas.evidence.similarity_table(built).to_string(index=False))
    print(
        f"wrote {files['points']}, {files['metrics']} and {files['similarity']} (and "
        + ", ".join(files[k].name for k in ("overlap", "point_overlap", "html", "embeddings"))
        + f", with {files['manifest'].name})"
    )


def _reference_features(names: list[str], image_set, folder, cache, runner) -> dict:
    from explorer.atlas import FAMILY_TITLES
    from explorer.spaces import baselines
    from explorer.spaces import embed as embeddings

    out = {}
    hashes = image_set.keys or None
    for name in names:
        if name in baselines.BASELINES:
            out[name] = baselines.baseline_features(name, image_set.images)
            continue
        family, model = embeddings.parse_space(name, folder)
        x = embeddings.embed(
            f"{family}:{model}", image_set.images, hashes, cache, None, folder, runner=runner
        )
        out[f"{FAMILY_TITLES.get(family, family).split(' ')[0]} {model}"] = x
    return out


def _unet_sweep(args: argparse.Namespace) -> None:
    import html as html_text

    from explorer import datasets
    from explorer.atlas import sweep
    from explorer.models import registry
    from explorer.spaces import unet_blocks
    from explorer.spaces.cache import EmbeddingCache
    from explorer.ui.atlas import sweep_views

    plan = sweep.make_plan(
        args.unet,
        timesteps=args.timesteps,
        blocks=args.blocks,
        seeds=args.seeds,
        prompts=args.prompts,
    )
    runner = None
    if args.engine == "ray":
        from explorer.spaces.ray_engine import RayEngine, require_ray

        require_ray()
        runner = RayEngine(address=args.address).start()
    elif args.address:
        raise ExplorerError("--address only applies with --engine ray.")
    if args.references is None:
        refs = [f"vae:{registry.resolve_unet(plan.unet).vae}", "pixels", "colour", "texture"]
    else:
        refs = [r.strip() for r in args.references.split(",") if r.strip() and r.strip() != "none"]
    kw = {"max_images": args.max_images}
    if not Path(args.source).exists() and args.source not in ("bundled", "augmented"):
        kw.update(per_class=args.per_class, split=args.split)
    image_set = datasets.load_source(args.source, **kw)
    print(image_set.summary(), file=sys.stderr)
    device = getattr(runner, "device", None)
    cost = sweep.sweep_cost(plan, len(image_set), device)
    print(sweep_views.cost_sentence(plan, len(image_set), cost), file=sys.stderr)
    unet_blocks.check_budget(cost, "This sweep")
    cache = EmbeddingCache()
    references = _reference_features(refs, image_set, args.models_dir, cache, runner)

    from tqdm import tqdm

    start = time.perf_counter()
    with tqdm(total=100, desc="sweep", unit="%", file=sys.stderr) as bar:

        def progress(f: float, desc: str) -> None:
            bar.set_description(desc[:60])
            bar.n = round(100 * min(max(f, 0.0), 1.0))
            bar.refresh()

        result = sweep.run(
            image_set,
            plan,
            cache=cache,
            runner=runner,
            device=device,
            references=references,
            progress=progress,
        )
    print(f"the sweep took {time.perf_counter() - start:,.0f} s", file=sys.stderr)
    files = sweep.write(result, args.out)
    html = Path(args.out) / "sweep.html"
    parts = []
    for labels in image_set.labeling_names:
        reading = sweep.prompt_reading(result.table, labels, "probe")
        text = sweep_views.reading_markdown(
            reading,
            main_labels=result.main_labels,
            model=plan.unet,
            n_images=result.n_images,
            seeds=plan.seeds,
        )
        plain = html_text.unescape(text).replace("**", "")  # the panel's Markdown as text
        print(f"\n## {labels}\n{plain}")
        for metric in ("probe", "knn5"):
            fig = sweep_views.sweep_figure(result, labels, metric)
            parts.append(fig.to_html(include_plotlyjs=not parts, full_html=False))
    try:
        html.write_text(
            "<!doctype html><meta charset='utf-8'><title>UNet sweep</title>" + "".join(parts)
        )
    except OSError as exc:
        raise ExplorerError(f"Cannot write {html}: {exc}. Check the --out path.") from exc
    print(f"wrote {files['sweep']}, {files['references']} and {html}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.pack:
            os.environ["EXPLORER_PACK"] = args.pack
        settings.check()  # a bad EXPLORER_* value stops every command with one sentence
        if args.command == "classpack":
            if settings.get().pack is not None:
                raise ExplorerError(
                    "classpack builds a pack with the Hub on: run it without --pack / "
                    "EXPLORER_PACK."
                )
            if args.device == "cpu":  # before torch is imported: CUDA stays unseen
                os.environ["CUDA_VISIBLE_DEVICES"] = ""
            _classpack(args)
            return 0
        from explorer.core import pack

        pack.active()  # a pack is checked, and the Hub pointed at it, before anything loads
        if args.command == "download":
            from explorer.models.download import download

            fetched = download(args.models or None)
            print(f"cached {len(fetched)} model(s): {', '.join(fetched)}")
        elif args.command == "models":
            from explorer.models.registry import (
                available_embedders,
                available_models,
                resolve,
                resolve_embedder,
            )

            print("VAEs (--model, --vae):")
            for name in available_models(args.models_dir):
                spec = resolve(name, args.models_dir)
                print(f"  {name:22s} {spec.source:50s} {spec.description}")
            print("Embedders (--clip, --dino, --vit):")
            for name in available_embedders():
                emb = resolve_embedder(name)
                print(f"  {name:22s} {emb.source:50s} {emb.description}")
            from explorer.models.registry import available_unets, resolve_unet

            print("UNet spaces (--unet; not in the default download, name them):")
            for name in available_unets():
                un = resolve_unet(name)
                print(f"  {name:22s} {un.source:50s} {un.description}")
        elif args.command == "atlas":
            _atlas(args)
        elif args.command == "unet-sweep":
            _unet_sweep(args)
        elif args.command == "autoencoders":
            _autoencoders(args)
        elif args.command == "perturb":
            _perturb(args)
        elif args.command == "lesson":
            _lesson(args)
        elif args.command == "roundtrip":
            from PIL import Image

            from explorer.lab import actions as lab
            from explorer.models.registry import default_vae

            out = Path(args.out)
            if out.suffix.lower() not in Image.registered_extensions():
                raise ExplorerError(
                    f"Cannot write {out.name}: unknown image file extension "
                    f"{out.suffix or '(none)'!r}. Give --out a .png or .jpg path."
                )
            model = args.model or default_vae(args.models_dir)
            rt = lab.roundtrip(
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
    except BrokenPipeError:  # `explorer models | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a piped command cut short
    return 0
