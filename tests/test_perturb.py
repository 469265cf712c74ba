"""The perturbation lab's core: ladders of perturbed images and their normalised distances."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer.images import io as imaging
from explorer.perturb import ladder as perturb
from explorer.perturb.ladder import COLUMNS, NAMES, PERTURBATIONS

ASSETS = imaging.ASSETS_DIR
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
# Pixel changes that must grow with strength on any photo: the ones applied to every pixel.
PHOTOMETRIC = ("hue", "brightness", "greyscale", "blur", "noise", "jpeg")
# Geometric ones saturate: once content no longer lines up, a larger move is not "more
# different" pixel by pixel (coffee's 50% crop differs slightly less than its 40% crop).
GEOMETRIC = ("shift", "crop", "rotate")


def _photo(name: str) -> Image.Image:
    with Image.open(ASSETS / f"{name}.jpg") as im:
        return im.convert("RGB")


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im, dtype=np.float64)


def _mad(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(_arr(a) - _arr(b)).mean())


def _solid(rgb: tuple[int, int, int], size: int = 8) -> Image.Image:
    return Image.new("RGB", (size, size), rgb)


@pytest.fixture(scope="module")
def astronaut_ladders() -> dict[str, list[tuple[float, Image.Image]]]:
    return perturb.all_ladders(_photo("astronaut"), 256)


# --------------------------------------------------------------------------- the table


def test_table_is_bounded_ordered_and_starts_at_zero():
    assert len(PERTURBATIONS) <= perturb.MAX_PERTURBATIONS
    assert len(set(NAMES)) == len(NAMES)
    assert NAMES[-1] == "same_meaning"
    for p in PERTURBATIONS:
        assert p.unit and p.description, p
        assert p.strengths[0] == 0, p
        assert all(b > a for a, b in itertools.pairwise(p.strengths)), p
        assert len(p.strengths) <= perturb.MAX_STRENGTHS, p
    assert PERTURBATIONS[NAMES.index("rotate")].strengths == (0, 5, 10, 20, 45)


# --------------------------------------------------------------------------- ladders


@pytest.mark.parametrize("size", [64, 256, 512])
def test_every_ladder_has_the_table_strengths_size_and_mode(size):
    source = Image.open(ASSETS / "chelsea.jpg").resize((451, 300)).convert("RGBA")  # not square
    base = imaging.prepare(source, size, "square")
    ladders = perturb.all_ladders(source, size)
    assert list(ladders) == [n for n in NAMES if n != "same_meaning"]
    for p in PERTURBATIONS[:-1]:
        rungs = ladders[p.name]
        assert [s for s, _ in rungs] == [float(s) for s in p.strengths], p.name
        for s, im in rungs:
            assert isinstance(s, float)
            assert (im.mode, im.size) == ("RGB", (size, size)), (p.name, s)
        assert rungs[0][1].tobytes() == base.tobytes(), p.name  # strength 0 = the prepared input
        assert rungs[0][1] is not base
        single = perturb.ladder(source, p.name, size)
        assert [(s, im.tobytes()) for s, im in single] == [(s, im.tobytes()) for s, im in rungs]


def test_ladders_are_deterministic_and_only_noise_uses_the_seed():
    image = _photo("rocket")
    a = perturb.all_ladders(image, 128, seed=3)
    b = perturb.all_ladders(image, 128, seed=3)
    c = perturb.all_ladders(image, 128, seed=4)
    for name in a:
        same = [x.tobytes() for _, x in a[name]] == [x.tobytes() for _, x in b[name]]
        assert same, name
        other = [x.tobytes() for _, x in a[name]] == [x.tobytes() for _, x in c[name]]
        assert other == (name != "noise"), name


@pytest.mark.parametrize("photo", PHOTOS)
def test_each_perturbation_changes_the_image_more_as_strength_grows(photo):
    """Mean absolute pixel difference from strength 0: > 0 for every rung, non-decreasing for
    photometric perturbations; geometric ones may saturate by up to 5% (see GEOMETRIC). The flip
    has one rung; "same meaning" photos are not ordered and are not tested here."""
    for name, rungs in perturb.all_ladders(_photo(photo), 256).items():
        d = [_mad(im, rungs[0][1]) for _, im in rungs]
        report = f"{photo} {name}: " + " ".join(f"{x:.2f}" for x in d)
        assert d[0] == 0 and min(d[1:]) > 0, report
        slack = 0.95 if name in GEOMETRIC else 1.0
        assert all(b >= slack * a for a, b in itertools.pairwise(d[1:])), report
        assert d[-1] > d[1] or len(d) == 2, report


def test_smallest_blur_is_sub_pixel_at_64_px_but_every_other_rung_changes():
    """At 64 px the 0.5 px (at 256 px) blur is a 0.125 px Gaussian: it may change nothing."""
    for name, rungs in perturb.all_ladders(_photo("chelsea"), 64).items():
        d = [_mad(im, rungs[0][1]) for _, im in rungs]
        first = 2 if name == "blur" else 1
        assert min(d[first:]) > 0, (name, d)


def test_what_each_perturbation_does(astronaut_ladders):
    lad = {n: dict(r) for n, r in astronaut_ladders.items()}
    base = _arr(lad["hue"][0.0])
    assert np.array_equal(_arr(lad["flip"][1.0]), base[:, ::-1])
    # shifted right by 4 px at 256 px (exact for whole pixels), reflect-filled at the left
    shifted = _arr(lad["shift"][4.0])
    assert np.array_equal(shifted[:, 4:], base[:, :-4])
    assert np.array_equal(shifted[:, :4], base[:, 4:0:-1])
    assert np.array_equal(_arr(perturb.ladder(_photo("astronaut"), "shift", 512)[3][1])[:, 16:],
                          _arr(imaging.prepare(_photo("astronaut"), 512))[:, :-16])  # fmt: skip
    grey = _arr(lad["greyscale"][1.0])
    assert np.abs(grey - grey.mean(axis=2, keepdims=True)).max() <= 1
    assert _arr(lad["brightness"][0.6]).mean() == pytest.approx(0.4 * base.mean(), rel=0.02)
    # noise: sigma 0.05 in [0, 1] units = 12.75 levels where nothing clips
    diff = _arr(lad["noise"][0.05]) - base
    inside = (base > 40) & (base < 215)
    assert diff[inside].std() == pytest.approx(0.05 * 255, rel=0.05)
    # a 50% crop is the centre half of the picture, zoomed back to the full side
    centre = imaging.prepare(lad["hue"][0.0].crop((64, 64, 192, 192)), 256)
    assert _mad(lad["crop"][0.5], centre) < 5 < _mad(lad["crop"][0.5], lad["hue"][0.0])
    # noise: one seeded pattern, scaled along the ladder (sigma 0.1 = twice sigma 0.05)
    both = inside & (base > 60) & (base < 195)
    assert np.corrcoef(diff[both], (_arr(lad["noise"][0.1]) - base)[both])[0, 1] > 0.95


def test_hue_rotates_every_hue_by_the_angle():
    """A wheel of every hue at full saturation: each turns by the angle, wrapping past red."""
    hsv = np.stack(np.broadcast_arrays(np.arange(256)[None, :], 255, 255), axis=-1)
    wheel = Image.fromarray(np.repeat(hsv, 256, axis=0).astype(np.uint8), "HSV").convert("RGB")
    rungs = perturb.ladder(wheel, "hue", 256)
    h0 = np.asarray(rungs[0][1].convert("HSV"), np.float64)[..., 0]
    for degrees, im in rungs[1:]:
        turned = (np.asarray(im.convert("HSV"), np.float64)[..., 0] - h0) % 256
        error = (turned - degrees * 256 / 360 + 128) % 256 - 128
        assert np.abs(error).max() <= 3, (degrees, np.abs(error).max())


def test_rotation_and_shift_fill_borders_by_reflection_not_black():
    flat = Image.new("RGB", (300, 200), (200, 120, 40))
    for name in ("rotate", "shift", "crop"):
        for s, im in perturb.ladder(flat, name, 128):
            assert np.abs(_arr(im) - (200, 120, 40)).max() <= 1, (name, s)


def test_same_meaning_ladder():
    others = [_photo("chelsea"), _photo("coffee").resize((300, 200))]
    rungs = perturb.ladder(_photo("astronaut"), "same_meaning", 128, same_meaning=others)
    assert [s for s, _ in rungs] == [0.0, 1.0, 2.0]
    assert rungs[2][1].tobytes() == imaging.prepare(others[1], 128).tobytes()
    assert "same_meaning" in perturb.all_ladders(_photo("astronaut"), 64, same_meaning=others)
    with pytest.raises(ValueError, match="same_meaning images"):
        perturb.ladder(_photo("astronaut"), "same_meaning", 64)
    with pytest.raises(ValueError, match="at most 7"):
        perturb.ladder(_photo("astronaut"), "same_meaning", 64, same_meaning=others * 4)


@pytest.mark.parametrize("size", [48, 520, 100, 256.0, True])
def test_bad_sizes_are_refused(size):
    with pytest.raises(ValueError, match="size"):
        perturb.ladder(_photo("rocket"), "flip", size)


def test_unknown_perturbation_is_refused():
    with pytest.raises(ValueError, match="unknown perturbation 'swirl'"):
        perturb.ladder(_photo("rocket"), "swirl")
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb.all_ladders(_photo("rocket"), names=["flip", "swirl"])


# --------------------------------------------------------------------------- distances


def pixels(images: list[Image.Image]) -> np.ndarray:
    return np.stack([_arr(im).ravel() / 255 for im in images])


def mean_colour(images: list[Image.Image]) -> np.ndarray:
    return np.stack([_arr(im).reshape(-1, 3).mean(axis=0) for im in images])


def _halves(side: str, size: int = 8) -> Image.Image:
    a = np.zeros((size, size, 3), np.uint8)
    h = size // 2
    {"left": a[:, :h], "right": a[:, h:], "top": a[:h]}[side][...] = 255
    return Image.fromarray(a)


def test_raw_pixel_distances_match_the_hand_computed_values():
    """Left-half white vs top-half white: cos 1/2; vs right-half white: cos 0; so the median
    reference distance is 1/2. Left-half vs all white: cos 1/sqrt(2)."""
    refs = [_halves("left"), _halves("top"), _halves("right")]
    ladders = {"demo": [(0.0, _halves("left")), (1.0, _halves("right")), (2.0, _solid((255,) * 3))]}
    df = perturb.distances({"pixels": pixels}, ladders, refs)
    assert tuple(df.columns) == COLUMNS
    assert df["perturbation"].tolist() == ["demo"] * 3
    assert df["space"].tolist() == ["pixels"] * 3
    assert df["strength"].tolist() == [0.0, 1.0, 2.0]
    assert df["distance"].tolist() == pytest.approx([0.0, 2.0, 2 - math.sqrt(2)], abs=1e-12)


def test_mean_colour_distances_and_two_spaces_in_one_frame():
    """Mean-colour space with red/green/blue references (pairwise cos 0, median 1): dark red is
    at 0 from red (cosine ignores scale), yellow at 1 - 1/sqrt(2), cyan at 1."""
    refs = [_solid((255, 0, 0)), _solid((0, 255, 0)), _solid((0, 0, 255))]
    rungs = [(0.0, _solid((255, 0, 0))), (1.0, _solid((128, 0, 0)))]
    rungs += [(2.0, _solid((255, 255, 0))), (3.0, _solid((0, 255, 255)))]
    df = perturb.distances({"colour": mean_colour, "pixels": pixels}, {"paint": rungs}, refs)
    colour = df[df.space == "colour"]["distance"].tolist()
    assert colour == pytest.approx([0, 0, 1 - 1 / math.sqrt(2), 1], abs=1e-12)
    # raw pixels of a solid image are its colour repeated: the same cosines
    assert df[df.space == "pixels"]["distance"].tolist() == pytest.approx(colour, abs=1e-12)
    assert df["space"].tolist() == ["colour"] * 4 + ["pixels"] * 4


def test_one_call_per_space_for_the_ladders_and_one_for_the_references(astronaut_ladders):
    calls: list[int] = []

    def counted(images):
        calls.append(len(images))
        return mean_colour(images)

    refs = [_photo(n) for n in PHOTOS[1:]]
    df = perturb.distances({"a": counted, "b": counted}, astronaut_ladders, refs)
    rungs = sum(len(r) for r in astronaut_ladders.values())
    distinct = 1 + rungs - len(astronaut_ladders)  # every ladder's strength 0 is the same image
    assert calls == [distinct, 3, distinct, 3]
    assert len(df) == 2 * rungs
    assert (df[df.strength == 0]["distance"] == 0.0).all()
    assert (df["distance"] >= 0).all()
    # mean colour knows nothing of layout: a mirror image is the same point; hue is not
    a = df[df.space == "a"].set_index(["perturbation", "strength"])["distance"]
    assert a["flip", 1.0] < 1e-9
    assert a["hue", 180.0] > 0.1


def test_strength_zero_is_exactly_zero_even_for_a_noisy_embedder():
    rng = np.random.default_rng(0)
    refs = [_photo(n) for n in PHOTOS[1:]]
    lad = {"flip": perturb.ladder(_photo("astronaut"), "flip", 64)}

    def noisy(images):
        return mean_colour(images) + rng.normal(0, 1e-3, (len(images), 3))

    df = perturb.distances({"n": noisy}, lad, refs)
    assert df["distance"].iloc[0] == 0.0


def test_distances_refuse_bad_input():
    refs = [_photo(n) for n in PHOTOS[1:]]
    lad = {"flip": perturb.ladder(_photo("astronaut"), "flip", 64)}
    with pytest.raises(ValueError, match="at least 3 reference"):
        perturb.distances({"c": mean_colour}, lad, refs[:2])
    with pytest.raises(ValueError, match="not told apart"):
        perturb.distances({"c": mean_colour}, lad, [refs[0]] * 3)
    with pytest.raises(ValueError, match="strength-0"):
        perturb.distances({"c": mean_colour}, {"flip": lad["flip"][1:]}, refs)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        perturb.distances({"c": lambda ims: mean_colour(ims)[:1]}, lad, refs)
    with pytest.raises(ValueError, match="no embedding spaces"):
        perturb.distances({}, lad, refs)


# --------------------------------------------------------------------------- files


def test_run_writes_perturb_csv(tmp_path):
    refs = [ASSETS / f"{n}.jpg" for n in PHOTOS[1:]]
    out = perturb.run(ASSETS / "astronaut.jpg", tmp_path / "out", {"pixels": pixels}, refs, size=64)
    assert out == tmp_path / "out" / "perturb.csv"
    assert sorted(p.name for p in out.parent.iterdir()) == ["perturb.csv"]  # no temporary left
    got = pd.read_csv(out)
    assert tuple(got.columns) == COLUMNS
    ladders = perturb.all_ladders(_photo("astronaut"), 64)
    want = perturb.distances({"pixels": pixels}, ladders, [imaging.prepare(_photo(n), 64)
                                                           for n in PHOTOS[1:]])  # fmt: skip
    assert got["perturbation"].tolist() == want["perturbation"].tolist()
    assert got["strength"].tolist() == pytest.approx(want["strength"].tolist())
    assert got["distance"].tolist() == pytest.approx(want["distance"].tolist(), rel=1e-5)
    assert got["distance"].max() > 0.1


def test_write_csv_needs_the_columns(tmp_path):
    df = pd.DataFrame({"perturbation": ["flip"], "strength": [1.0], "distance": [0.5]})
    with pytest.raises(ValueError, match="space"):
        perturb.write_csv(df, tmp_path / "perturb.csv")
    df["space"] = "vae"
    path = perturb.write_csv(df, tmp_path / "perturb.csv")
    assert path.read_text().splitlines() == [
        "perturbation,strength,space,distance",
        '"flip",1,"vae",0.5',  # text quoted and never a formula, numbers bare
    ]


# --------------------------------------------------------------------------- the real VAE


def _taesd_encoder(sd):
    """A TAESD-family encoder built from its state dict alone (so this test does not depend on
    how the project's model modules are arranged): (N,3,H,W) in [0,1] -> (N,C,H/8,W/8)."""
    import torch
    from torch import nn

    w = sd["0.weight"].shape[0]

    def conv(i: int, o: int, **kw) -> nn.Conv2d:
        return nn.Conv2d(i, o, 3, padding=1, **kw)

    class Block(nn.Module):
        def __init__(self, index: int):
            super().__init__()
            self.conv = nn.Sequential(conv(w, w), nn.ReLU(), conv(w, w), nn.ReLU(), conv(w, w))
            p = sd.get(f"{index}.pool.0.weight")  # TAEF2's lowest-resolution blocks
            self.pool = None
            if p is not None:
                width = p.shape[0]
                self.pool = nn.Sequential(
                    nn.Conv2d(w, width, 1, bias=False),
                    nn.GroupNorm(4, width),
                    nn.ReLU(),
                    nn.Conv2d(width, w, 1, bias=False),
                )

        def forward(self, x):
            if self.pool is not None:
                x = x + self.pool(x)
            return torch.relu(self.conv(x) + x)

    layers = [conv(3, w), Block(1)]
    for first in (2, 6, 10):
        layers += [
            conv(w, w, stride=2, bias=False),
            *(Block(i) for i in range(first + 1, first + 4)),
        ]
    layers.append(conv(w, sd["14.weight"].shape[0]))
    encoder = nn.Sequential(*layers)
    encoder.load_state_dict(sd, strict=True)
    return encoder.float().eval().requires_grad_(False)


@pytest.mark.weights
@pytest.mark.slow
def test_real_vae_moves_with_layout_not_with_blur_or_jpeg(taef2_dir):
    """The app's VAE space (TAEF2 posterior mean at 64x64, flattened) on the astronaut at 512 px,
    against unrelated scikit-image photos. Measured (fractions of the median unrelated-photo
    distance): flip 0.76, rotate 10° 0.38, hue 90° 0.20, 8-px shift 0.08, blur 1 px and JPEG
    quality 50 ~0.001."""
    import skimage.data
    import torch

    start = time.perf_counter()
    sd = torch.load(taef2_dir / "taef2_encoder.pth", map_location="cpu", weights_only=True)
    encoder = _taesd_encoder(sd)

    def vae(images):
        x = torch.from_numpy(np.stack([np.asarray(imaging.prepare(im, 64)) for im in images]))
        with torch.no_grad():
            return encoder(x.permute(0, 3, 1, 2).float() / 255).flatten(1).numpy()

    names = ("chelsea", "coffee", "rocket", "camera", "hubble_deep_field")
    refs = [imaging.prepare(Image.fromarray(getattr(skimage.data, n)()), 512) for n in names]
    ladders = perturb.all_ladders(_photo("astronaut"), 512)
    df = perturb.distances({"vae": vae}, ladders, refs)
    d = df.set_index(["perturbation", "strength"])["distance"]
    table = "\n".join(
        f"{n:10s} " + "  ".join(f"{s:g}:{v:.3f}" for (_, s), v in d[[n]].items()) for n in ladders
    )
    print(
        f"\nTAEF2 distances / median unrelated-photo distance ({time.perf_counter() - start:.1f} s)"
    )
    print(table)

    flip, rot10, hue90 = d["flip", 1.0], d["rotate", 10.0], d["hue", 90.0]
    shift8 = d["shift", 4.0]  # 4 px at 256 px = 8 px at 512 px
    blur, jpeg = d["blur", 1.0], d["jpeg", 50.0]  # 2 px radius at 512 px; quality 50
    assert flip > 0.5, table  # measured 0.76
    assert rot10 > 0.2, table  # 0.38
    assert 0.05 < hue90 < flip, table  # 0.20
    assert 0.02 < shift8 < rot10, table  # 0.08
    assert max(blur, jpeg) < 0.05, table  # ~0.001
    assert flip > max(blur, jpeg) + 0.4, table
    # nothing done to the same photo takes it as far as an unrelated photo (max 0.72)
    assert d.max() < 1.0, table
    # and the VAE distance grows along every ladder (up to noise)
    for n in ladders:
        v = d[n].to_numpy()
        assert (np.diff(v) > -0.01).all(), (n, table)
