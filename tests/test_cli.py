"""`python -m explorer`: roundtrip, models, and its error handling.

The entry point itself is run as a subprocess (stdout/stderr/exit status as a user sees them)
for one good and one bad input. The other cases call ``explorer.cli.main``, which is all that
``python -m explorer`` runs, in this process, to save a Python + torch + diffusers start-up each.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import cli
from explorer.analysis import metrics
from explorer.images import io as imaging
from explorer.lab import actions as lab
from explorer.models.registry import EMBEDDERS, REGISTRY, UNETS
from tests import tiny_models

ROOT = Path(__file__).resolve().parents[1]
RESULT_LINE = re.compile(r"^PSNR [0-9.]+ SSIM [0-9.]+$")


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPLORER_")}
    env["EXPLORER_PLUGINS"] = "tests.tiny_models"  # the tiny models: cwd is the repository root
    return subprocess.run(
        [sys.executable, "-m", "explorer", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _printed_psnr(stdout: str) -> float:
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and RESULT_LINE.match(lines[0]), stdout
    return float(lines[0].split()[1])


def _psnr_of_file(image: Path, out: Path, resolution: int) -> float:
    original = imaging.to_numpy_hwc(lab.prepare_input(image, resolution))
    with Image.open(out) as im:
        assert im.size == (resolution, resolution)
        return metrics.psnr(original, imaging.to_numpy_hwc(im))


@pytest.mark.slow
def test_roundtrip_subprocess_test_tiny(astronaut, tmp_path):
    out = tmp_path / "sub" / "x.png"
    args = ["--model", "test-tiny", "--out", str(out), "--resolution", "128"]
    proc = run_cli("roundtrip", str(astronaut), *args)
    assert proc.returncode == 0, proc.stderr
    psnr = _printed_psnr(proc.stdout)
    assert out.is_file()
    # the file written is the reconstruction whose PSNR was printed (PNG: lossless)
    assert _psnr_of_file(astronaut, out, 128) == pytest.approx(psnr, abs=0.005)
    assert psnr == pytest.approx(lab.roundtrip(astronaut, "test-tiny", 128).psnr, abs=0.005)
    assert "test-tiny" in proc.stderr and "48.0x" in proc.stderr
    assert "Traceback" not in proc.stderr


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_roundtrip_local_diffusers_folder(astronaut, tiny_kl_folder, tmp_path, capsys):
    out = tmp_path / "kl.png"
    rc, stdout, _ = _main(
        capsys,
        "roundtrip",
        str(astronaut),
        "--model",
        str(tiny_kl_folder),
        "--out",
        str(out),
        "--resolution",
        "64",
    )
    assert rc == 0
    psnr = _printed_psnr(stdout)
    assert _psnr_of_file(astronaut, out, 64) == pytest.approx(psnr, abs=0.005)
    # the folder holds test-kl16's weights: same reconstruction
    same = lab.roundtrip(astronaut, "test-kl16", 64)
    with Image.open(out) as im:
        np.testing.assert_array_equal(np.asarray(im), np.asarray(same.reconstruction))


@pytest.mark.weights
@pytest.mark.parametrize("which", ["folder", "encoder file"])
@pytest.mark.slow
def test_roundtrip_real_taef2(astronaut, taef2_dir, tmp_path, capsys, which):
    model = taef2_dir if which == "folder" else taef2_dir / "taef2_encoder.pth"
    out = tmp_path / "taef2.png"
    rc, stdout, err = _main(
        capsys, "roundtrip", str(astronaut), "--model", str(model), "--out", str(out)
    )
    assert rc == 0, err
    psnr = _printed_psnr(stdout)
    assert psnr >= 30
    assert _psnr_of_file(astronaut, out, 512) == pytest.approx(psnr, abs=0.005)


@pytest.mark.slow
def test_non_image_input_is_a_one_line_error(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("these are not pixels\n")
    out = tmp_path / "x.png"
    proc = run_cli("roundtrip", str(notes), "--model", "test-tiny", "--out", str(out))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "not an image" in lines[0]
    assert lines[0].rstrip().endswith(".")
    assert "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resolution", "100"], "multiple of 8"),
        (["--out", "{tmp}/x.xyz"], "extension"),
        (["--model", "no-such-vae"], "Choose one of"),
    ],
    ids=["resolution", "extension", "model"],
)
def test_bad_arguments_are_one_line_errors(astronaut, tmp_path, capsys, args, message):
    argv = ["roundtrip", str(astronaut), "--model", "test-tiny", "--out", f"{tmp_path}/x.png"]
    argv += [a.format(tmp=tmp_path) for a in args]  # argparse: the last occurrence wins
    rc, stdout, err = _main(capsys, *argv)
    assert rc == 2 and stdout == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


def test_models_lists_the_registry(capsys, monkeypatch):
    monkeypatch.delenv("EXPLORER_MODELS_DIR", raising=False)
    rc, stdout, _ = _main(capsys, "models")
    assert rc == 0
    names = [line.split()[0] for line in stdout.splitlines() if line.startswith("  ")]
    registered = [*tiny_models.VAES, *tiny_models.EMBEDDERS, tiny_models.UNET.name]
    assert names == [
        *REGISTRY,
        *tiny_models.VAES,
        *EMBEDDERS,
        *tiny_models.EMBEDDERS,
        *UNETS,
        tiny_models.UNET.name,
    ]
    for spec in [*REGISTRY.values(), *EMBEDDERS.values(), *UNETS.values()]:
        assert spec.repo_id in stdout
    for line in stdout.splitlines():
        if line.split()[:1] and line.split()[0] in registered:
            assert "registered by tests.tiny_models" in line


def test_models_piped_into_a_reader_that_has_gone_ends_quietly():
    """``explorer models | head -1``: a closed pipe ends the command without a traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "explorer", "models"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[1],
        )
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert proc.returncode == 141 and "Traceback" not in err, err


@pytest.mark.weights
def test_models_lists_a_models_dir(taef2_dir, capsys):
    rc, stdout, _ = _main(capsys, "models", "--models-dir", str(taef2_dir))
    assert rc == 0
    names = [line.split()[0] for line in stdout.splitlines() if line.strip()]
    assert "local:taef2" in names and str(taef2_dir) in stdout


def _class_folder(root: Path, classes: int = 3, per_class: int = 5) -> Path:
    rng = np.random.default_rng(1)
    for c in range(classes):
        d = root / f"class{c}"
        d.mkdir(parents=True)
        for i in range(per_class):
            arr = np.clip(rng.normal(60 * c + 40, 20, (48, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{i}.png")
    return root


def _read_csv(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_atlas_cli_writes_points_and_metrics(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    src = _class_folder(tmp_path / "photos")
    out = tmp_path / "atlas"
    assert (
        cli.main(
            [
                "atlas",
                str(src),
                "--out",
                str(out),
                "--vae",
                "test-tiny",
                "--clip",
                "test-clip",
                "--method",
                "pca",
            ]
        )
        == 0
    )
    points = _read_csv(out / "points.csv")
    assert len(points) == 15 and {p["label"] for p in points} == {"class0", "class1", "class2"}
    assert set(points[0]) == {"index", "path", "label", "x_vae", "y_vae", "x_clip", "y_clip"}
    metrics_rows = _read_csv(out / "metrics.csv")
    assert list(metrics_rows[0]) == [
        "space",
        "labels",
        "knn5",
        "knn10",
        "chance",
        "silhouette",
        "trustworthiness",
        "probe",
        "probe_chance",
        "probe_spread",
        "probe_folds",
        "probe_note",
        "sample",
    ]
    assert [r["space"] for r in metrics_rows] == ["vae", "clip"]  # only the spaces asked for
    assert {r["labels"] for r in metrics_rows} == {"label"}  # one labelling: one value there
    # the app can reopen what the CLI wrote
    from explorer import atlas

    reopened, method = atlas.load_saved(out)
    assert method == "pca" and len(reopened.images) == 15
    assert "wrote" in capsys.readouterr().out


def test_atlas_cli_baselines_add_the_controls_probe_columns_and_similarity(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    src = _class_folder(tmp_path / "photos")
    out = tmp_path / "atlas"
    args = ["atlas", str(src), "--out", str(out), "--vae", "test-tiny", "--method", "pca"]
    assert cli.main([*args, "--baselines", "pixels, colour,texture"]) == 0
    metrics_rows = _read_csv(out / "metrics.csv")
    assert [r["space"] for r in metrics_rows] == ["vae", "pixels", "colour", "texture"]
    for r in metrics_rows:  # 15 images in 3 classes of 5: a score in [0, 1] beside chance
        assert 0.0 <= float(r["probe"]) <= 1.0 and float(r["probe_chance"]) == round(1 / 3, 4)
        assert r["probe_folds"] == "5" and r["probe_note"] == ""
    sim = _read_csv(out / "similarity.csv")
    assert list(sim[0]) == ["space_a", "space_b", "cka", "mutual_knn10"]
    assert len(sim) == 4 + 6  # each space with itself, and every pair
    assert all(float(r["cka"]) == 1.0 for r in sim if r["space_a"] == r["space_b"])
    assert "similarity.csv" in capsys.readouterr().out
    assert cli.main([*args, "--baselines", "pixles"]) == 2
    err = capsys.readouterr().err
    assert "Unknown control space 'pixles'" in err and "pixels, colour, texture" in err


def test_atlas_cli_bad_source_is_one_line(tmp_path, capsys):
    assert cli.main(["atlas", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


@pytest.mark.weights
def test_atlas_cli_with_real_taef2(tmp_path, monkeypatch, taef2_dir):
    """Colour-separated classes: real VAE latents (TAEF2) group them almost perfectly."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    src = _class_folder(tmp_path / "photos", classes=3, per_class=6)
    out = tmp_path / "atlas"
    assert (
        cli.main(["atlas", str(src), "--out", str(out), "--vae", str(taef2_dir), "--method", "pca"])
        == 0
    )
    rows = _read_csv(out / "metrics.csv")
    assert [r["space"] for r in rows] == ["vae"]
    assert float(rows[0]["knn5"]) >= 0.9 and abs(float(rows[0]["chance"]) - 1 / 3) < 1e-3


@pytest.mark.weights
@pytest.mark.slow
def test_atlas_cli_on_the_teaching_set_shows_the_lesson(tmp_path, monkeypatch, taef2_dir):
    """`explorer atlas bundled --vae <TAEF2>`: the real VAE's neighbours share the appearance, not
    the meaning (group-aware), and counting same-photo neighbours would hide that."""
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "atlas"
    argv = ["atlas", "bundled", "--out", str(out), "--vae", str(taef2_dir), "--method", "pca"]
    assert cli.main(argv) == 0
    rows = {r["labels"]: r for r in _read_csv(out / "metrics.csv")}
    assert set(rows) == {"meaning", "appearance", "source", "meaning (same photo counted)"}
    meaning, appearance = (float(rows[k]["knn5"]) for k in ("meaning", "appearance"))
    assert abs(meaning - float(rows["meaning"]["chance"])) <= 0.3
    assert appearance >= meaning + 0.3
    assert float(rows["meaning (same photo counted)"]["knn5"]) > meaning + 0.3
    assert float(rows["appearance"]["silhouette"]) > float(rows["meaning"]["silhouette"])
    points = _read_csv(out / "points.csv")
    assert {"label_meaning", "label_appearance", "label_source", "group"} <= set(points[0])


# --------------------------------------------------------------------------- autoencoders


def test_autoencoders_cli_writes_the_table_of_the_cached_models(tmp_path, monkeypatch, capsys):
    import csv

    from explorer.playground import cache as playground_cache
    from explorer.playground import digits as pg

    monkeypatch.setattr(
        playground_cache, "_DEFAULT_CACHE", playground_cache.ModelCache(tmp_path / "models")
    )
    out = tmp_path / "report"
    rc, stdout, err = _main(capsys, "autoencoders", "--out", str(out), "--epochs", "2")
    assert rc == 0, err
    with (out / "autoencoders.csv").open() as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == [
            "model",
            "recon_mse",
            "prior_kl",
            "sample_confidence",
            "latent_knn5",
        ]
        rows = {r["model"]: r for r in reader}
    assert list(rows) == ["ae", "vae", "vq"]
    assert stdout.splitlines()[0] == "model,recon_mse,prior_kl,sample_confidence,latent_knn5"
    for model in pg.MODELS:
        trained = playground_cache.get_trained(pg.TrainConfig(model=model, epochs=2, seed=0))
        assert trained.cfg.epochs == 2
        expected = pg.evaluate(trained)
        assert float(rows[model]["recon_mse"]) == expected["recon_mse"]
        assert float(rows[model]["latent_knn5"]) == expected["latent_knn5"]
        assert 0.0 < float(rows[model]["sample_confidence"]) <= 1.0
        for name in ("latents", "grid", "grid_wide", "samples", "interpolation"):
            assert (out / f"{name}_{model}.png").is_file()
    assert np.isnan(float(rows["vq"]["prior_kl"])) and float(rows["ae"]["prior_kl"]) >= 0
    assert (out / "codebook_usage_vq.png").is_file()
    # trained once, through the cache the app uses: the checks above retrained nothing
    assert playground_cache.default_cache().trainings == 3


def test_autoencoders_cli_bad_epochs_is_one_line(tmp_path, capsys):
    rc, _, err = _main(capsys, "autoencoders", "--out", str(tmp_path), "--epochs", "0")
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "--epochs" in err


# --------------------------------------------------------------------------- perturb


def _perturb_rows(path: Path) -> list[dict]:
    import csv

    with path.open() as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["perturbation", "strength", "space", "distance"]
        return list(reader)


def test_perturb_cli_on_a_teaching_photo(astronaut, tmp_path, monkeypatch, capsys):
    from explorer.models.registry import default_vae
    from explorer.perturb import ladder as perturb
    from explorer.perturb import measure as perturb_lab

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    rc, stdout, err = _main(capsys, "perturb", str(astronaut), "--out", str(tmp_path / "p"))
    assert rc == 0, err
    rows = _perturb_rows(tmp_path / "p" / "perturb.csv")
    space = f"vae:{default_vae()}"  # no space given: the default VAE only
    assert {r["space"] for r in rows} == {space} and space in stdout
    # the astronaut is a teaching-set source (person): its other photo is the same_meaning rung
    assert [r["perturbation"] for r in rows if r["strength"] == "0"] == list(perturb.NAMES)
    assert "person" in err
    for r in rows:
        if float(r["strength"]) == 0:
            assert float(r["distance"]) == 0.0
        else:
            assert float(r["distance"]) >= 0.0
    # the flip row is what perturb.distances gives with the app's embedding of that space
    image = imaging.load_image(astronaut)
    refs = perturb_lab.references(image)
    assert refs.source == "skimage:astronaut.png" and len(refs.same_meaning) == 1
    flip = {"flip": perturb.ladder(image, "flip", 256)}
    fn = perturb_lab.space_embedder(space)
    expected = perturb.distances({space: fn}, flip, refs.unrelated)["distance"].iloc[1]
    got = next(
        float(r["distance"]) for r in rows if r["perturbation"] == "flip" and r["strength"] == "1"
    )
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_perturb_cli_every_space_given_and_no_same_meaning(tmp_path, monkeypatch, capsys):
    from explorer.perturb import ladder as perturb

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    photo = tmp_path / "noise.png"  # not one of the teaching set's photos
    Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(photo)
    args = ["--vae", "test-tiny", "--clip", "test-clip", "--dino", "test-dino"]
    rc, _, err = _main(capsys, "perturb", str(photo), "--out", str(tmp_path / "p"), *args)
    assert rc == 0, err
    rows = _perturb_rows(tmp_path / "p" / "perturb.csv")
    assert {r["space"] for r in rows} == {"vae:test-tiny", "clip:test-clip", "dino:test-dino"}
    names = {r["perturbation"] for r in rows}
    assert names == set(perturb.NAMES) - {"same_meaning"}
    per_space = len(rows) // 3
    assert per_space == sum(len(p.strengths) for p in perturb.PERTURBATIONS[:-1])


def test_perturb_cli_bad_image_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    rc, _, err = _main(capsys, "perturb", str(bad), "--out", str(tmp_path / "p"))
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
