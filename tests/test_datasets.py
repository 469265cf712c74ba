"""Image sets: bundled set, zip / folder / uploads / Hub loaders, and their safety rules.

Every zip is built in ``tmp_path`` with :mod:`zipfile`; nothing is downloaded. The Hub tests
stub only the network (the reachability check or ``datasets.load_dataset``), never the code
under test.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import datasets as ds
from explorer import hub, imaging
from explorer.errors import ExplorerError, ModelUnavailableError

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def png(color=(200, 30, 30), size=(16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def noise_png(seed: int = 0, size: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    """Write ``members`` verbatim (names are not sanitised by ``writestr``)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tree(root: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        f = root / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    return root


def listing(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


@pytest.fixture(autouse=True)
def _default_limits(monkeypatch):
    for var in ("EXPLORER_MAX_SET_IMAGES", "EXPLORER_MAX_ZIP_MB", "EXPLORER_MAX_FILE_MB"):
        monkeypatch.delenv(var, raising=False)


TREE = {
    "a/b/cat/1.png": png((200, 30, 30)),
    "a/b/cat/2.png": png((190, 40, 30)),
    "dog/2.png": png((30, 30, 200)),
    "dog/3.png": png((40, 30, 190)),
    "notes.txt": b"hello",
    ".hidden/x.png": png(),
    "dog/.DS_Store": b"\0\0\0\1Bud1",
}
TREE_LABELS = {
    "a/b/cat/1.png": "cat",
    "a/b/cat/2.png": "cat",
    "dog/2.png": "dog",
    "dog/3.png": "dog",
}


# --------------------------------------------------------------------------------------------
# ImageSet
# --------------------------------------------------------------------------------------------


def _tiny_set(labels, skipped=()):
    ims = [Image.new("RGB", (4, 4), (i, i, i)) for i in range(len(labels))]
    return ds.ImageSet(
        "t", ims, list(labels), [f"{i}.png" for i in range(len(labels))], list(skipped)
    )


def test_summary_counts_and_skipped():
    s = _tiny_set(["cat", "cat", "dog", "dog"])
    assert s.summary() == "4 images in 2 classes (2 each)"
    s = _tiny_set(["cat", "cat", "dog"], [("a.txt", "not an image ('.txt' file)")])
    assert (
        s.summary() == "3 images in 2 classes (cat 2, dog 1); 1 file skipped: a.txt (not an image)"
    )
    long_reason = "This image file is damaged or incomplete (it could not be fully decoded); ..."
    s = _tiny_set(["a"] * 3, [(f"{i}.jpg", long_reason) for i in range(5)])
    assert s.summary().endswith(
        "5 files skipped: 0.jpg (damaged or incomplete), 1.jpg (damaged or incomplete), "
        "2.jpg (damaged or incomplete), and 2 more"
    )
    assert "(1–3 per class)" in _tiny_set([f"c{i}" for i in range(9)] + ["c0", "c0"]).summary()


def test_subset_and_validation():
    s = _tiny_set(["a", "b", "c", "d"], [("x", "y")])
    sub = s.subset([2, 0])
    assert sub.labels == ["c", "a"] and sub.paths == ["2.png", "0.png"]
    assert sub.images[0] is s.images[2] and sub.skipped == s.skipped
    assert s.subset(np.array([True, False, False, True])).labels == ["a", "d"]
    assert s.subset(slice(1, 3)).labels == ["b", "c"]
    assert len(s.subset([])) == 0
    with pytest.raises(IndexError):
        s.subset([4])
    with pytest.raises(ValueError):
        s.subset(np.array([True, False]))
    with pytest.raises(ValueError, match="same length"):
        ds.ImageSet("bad", s.images, ["a"], s.paths)


# --------------------------------------------------------------------------------------------
# bundled set
# --------------------------------------------------------------------------------------------


def test_bundled_set_is_deterministic_labelled_and_small():
    ds._bundled_sources.cache_clear()
    ds._lfw_subset.cache_clear()
    t0 = time.perf_counter()
    a = ds.bundled_set()
    elapsed = time.perf_counter() - t0
    b = ds.bundled_set()
    assert elapsed < 10, f"bundled_set took {elapsed:.1f} s (target < 2 s)"

    assert 60 <= len(a) <= 120
    assert a.labels == b.labels and a.paths == b.paths
    assert all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(a.images, b.images, strict=True)
    )
    assert all(im.mode == "RGB" and max(im.size) <= ds.MAX_SIDE for im in a.images)
    assert not a.skipped and a.description

    counts = a.class_counts()
    assert len(counts) >= 5
    for name in ("astronaut", "cat", "coffee", "rocket", "face", "non-face"):
        assert counts.get(name, 0) >= 4, counts
    assert all(label.strip() and label == label.lower() for label in a.labels)

    # same object, different colours: a hue-rotated cat labelled "cat"
    hue_cats = [p for p, lab in zip(a.paths, a.labels, strict=True) if lab == "cat" and "hue" in p]
    assert hue_cats
    # same colours, different object: the cat in the coffee's palette is still a cat
    swapped = [i for i, p in enumerate(a.paths) if "chelsea" in p and "palette of coffee" in p]
    assert len(swapped) == 1 and a.labels[swapped[0]] == "cat"
    coffee = np.asarray(a.images[a.paths.index("skimage:coffee.png")], dtype=np.float64)
    cat = np.asarray(a.images[a.paths.index("skimage:chelsea.png")], dtype=np.float64)
    recoloured = np.asarray(a.images[swapped[0]], dtype=np.float64)
    mean = lambda x: x.reshape(-1, 3).mean(0)  # noqa: E731
    assert np.abs(mean(recoloured) - mean(coffee)).sum() < np.abs(mean(cat) - mean(coffee)).sum()

    # another seed changes the augmentations, not the originals
    c = ds.bundled_set(seed=1)
    assert c.labels == a.labels
    i = a.paths.index("skimage:chelsea.png")
    assert np.array_equal(np.asarray(a.images[i]), np.asarray(c.images[i]))
    assert not all(
        x.size == y.size and np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(a.images, c.images, strict=True)
    )
    assert len(ds.bundled_set(n_aug=0)) < len(a)
    with pytest.raises(ValueError):
        ds.bundled_set(n_aug=-1)


# --------------------------------------------------------------------------------------------
# zip: layout and labels
# --------------------------------------------------------------------------------------------


def test_zip_nested_class_folders(tmp_path):
    z = make_zip(
        tmp_path / "set.zip",
        {
            "root/a/b/cat/1.png": png(),
            "root/a/b/cat/4.png": png(),
            "root/dog/2.png": png((0, 0, 255)),
            "root/dog/3.png": png((0, 0, 250)),
        },
    )
    s = ds.from_zip(z)
    assert dict(zip(s.paths, s.labels, strict=True)) == {
        "root/a/b/cat/1.png": "cat",
        "root/a/b/cat/4.png": "cat",
        "root/dog/2.png": "dog",
        "root/dog/3.png": "dog",
    }
    assert s.name == "set" and not s.skipped
    assert all(im.mode == "RGB" for im in s.images)


def test_zip_single_top_folder_and_clutter(tmp_path):
    z = make_zip(
        tmp_path / "photos.zip",
        {
            "photos/": b"",
            "photos/cat/1.png": png(),
            "photos/cat/2.jpg": _jpeg(),
            "photos/dog/1.png": png((0, 0, 255)),
            "photos/README.txt": b"my photos",
            "__MACOSX/photos/cat/._1.png": b"\0\5\26\7junk",
            "photos/.DS_Store": b"junk",
            "photos/dog/Thumbs.db": b"junk",
        },
    )
    s = ds.from_zip(z)
    assert s.labels == ["cat", "cat", "dog"]
    assert s.paths == ["photos/cat/1.png", "photos/cat/2.jpg", "photos/dog/1.png"]
    assert [p for p, _ in s.skipped] == ["photos/README.txt"]
    assert "not an image" in s.skipped[0][1]
    assert s.summary() == (
        "3 images in 2 classes (cat 2, dog 1); 1 file skipped: photos/README.txt (not an image)"
    )


def _jpeg(size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(buf, "JPEG")
    return buf.getvalue()


def test_zip_big_images_are_downsized(tmp_path):
    z = make_zip(
        tmp_path / "big.zip",
        {"a/1.png": png(size=(1200, 300)), "a/2.png": png(size=(300, 900)), "b/3.png": png()},
    )
    s = ds.from_zip(z)
    assert [im.size for im in s.images] == [(512, 128), (171, 512), (16, 12)]


def test_zip_with_one_class_is_refused(tmp_path):
    z = make_zip(tmp_path / "one.zip", {f"data/cats/{i}.png": png() for i in range(4)})
    with pytest.raises(ds.DatasetError, match=r"Found one class 'cats'.*at least two sub-folders"):
        ds.from_zip(z)


def test_zip_with_two_images_is_refused(tmp_path):
    z = make_zip(tmp_path / "two.zip", {"cat/1.png": png(), "dog/1.png": png()})
    with pytest.raises(ds.DatasetError, match=r"Only 2 readable images.*at least 3"):
        ds.from_zip(z)


def test_zip_without_images_is_refused(tmp_path):
    z = make_zip(tmp_path / "docs.zip", {"a.txt": b"x", "b/c.csv": b"1,2"})
    with pytest.raises(ds.DatasetError, match=r"No readable images.*2 files skipped.*sub-folder"):
        ds.from_zip(z)


def test_zip_unreadable_members_are_skipped_with_reasons(tmp_path):
    good = noise_png(1)
    z = make_zip(
        tmp_path / "mixed.zip",
        {
            "cat/1.png": png(),
            "cat/2.png": png((250, 0, 0)),
            "cat/text.jpg": b"This is a plain text file, renamed to .jpg.\n" * 20,
            "dog/1.png": png((0, 0, 255)),
            "dog/truncated.png": good[: len(good) * 6 // 10],
            "dog/empty.png": b"",
        },
    )
    s = ds.from_zip(z)
    assert s.labels == ["cat", "cat", "dog"]
    reasons = dict(s.skipped)
    assert set(reasons) == {"cat/text.jpg", "dog/truncated.png", "dog/empty.png"}
    assert "not an image" in reasons["cat/text.jpg"]
    assert "damaged or incomplete" in reasons["dog/truncated.png"]
    assert "empty" in reasons["dog/empty.png"]
    assert "3 files skipped" in s.summary()


def test_zip_nested_archive_is_skipped(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("cat/9.png", png())
    z = make_zip(
        tmp_path / "outer.zip",
        {
            "cat/1.png": png(),
            "cat/more.zip": inner.getvalue(),
            "dog/1.png": png((0, 0, 255)),
            "dog/2.png": png((0, 0, 200)),
            "dog/old.tar.gz": b"\x1f\x8b\x08\x00",
        },
    )
    s = ds.from_zip(z)
    assert len(s) == 3
    reasons = dict(s.skipped)
    assert set(reasons) == {"cat/more.zip", "dog/old.tar.gz"}
    assert all("nested archive" in r for r in reasons.values())


def test_not_a_zip_is_refused(tmp_path):
    fake = tmp_path / "photos.zip"
    fake.write_text("this is not a zip")
    with pytest.raises(ds.DatasetError, match="is not a zip archive"):
        ds.from_zip(fake)
    real = make_zip(tmp_path / "real.zip", {f"c{i % 2}/{i}.png": noise_png(i) for i in range(6)})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    with pytest.raises(ds.DatasetError, match="not a zip archive, or it is damaged"):
        ds.from_zip(cut)
    with pytest.raises(ds.DatasetError, match="No zip file was found"):
        ds.from_zip(tmp_path / "missing.zip")
    with pytest.raises(ExplorerError):
        ds.from_zip(tmp_path)  # a folder is not a zip file


# --------------------------------------------------------------------------------------------
# zip: safety
# --------------------------------------------------------------------------------------------


def test_zip_path_traversal_is_skipped_and_nothing_is_written(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    z = make_zip(
        work / "evil.zip",
        {
            "../evil.png": png(),
            "/abs.png": png(),
            "cat/../../evil.png": png(),
            "..\\evil.png": png(),
            "C:/evil.png": png(),
            "cat/1.png": png(),
            "cat/2.png": png(),
            "dog/1.png": png((0, 0, 255)),
        },
    )
    with zipfile.ZipFile(z) as zf:  # the hostile names really are in the archive
        assert {"../evil.png", "/abs.png"} <= set(zf.namelist())

    def no_extract(*_a, **_k):
        raise AssertionError("from_zip must never extract to disk")

    monkeypatch.setattr(zipfile.ZipFile, "extract", no_extract)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", no_extract)
    cwd = Path.cwd()
    watched = [tmp_path, tmp_path.parent, cwd, cwd.parent]
    before = {d: listing(d) if d == tmp_path else set(os.listdir(d)) for d in watched}
    abs_existed = os.path.exists("/abs.png")

    s = ds.from_zip(z)

    assert s.labels == ["cat", "cat", "dog"]
    unsafe = {p for p, r in s.skipped if "unsafe path" in r}
    assert unsafe == {
        "../evil.png",
        "/abs.png",
        "cat/../../evil.png",
        "..\\evil.png",
        "C:/evil.png",
    }
    after = {d: listing(d) if d == tmp_path else set(os.listdir(d)) for d in watched}
    assert after == before
    assert not list(tmp_path.parent.rglob("evil.png"))
    assert not (cwd / "evil.png").exists() and not (cwd.parent / "evil.png").exists()
    assert os.path.exists("/abs.png") == abs_existed


@pytest.fixture(scope="module")
def bomb_zip(tmp_path_factory) -> Path:
    """300 MB of zeros in one member (compresses to ~300 KB) plus three real images."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("cat/1.png", png())
        zf.writestr("cat/2.png", png())
        zf.writestr("dog/1.png", png((0, 0, 255)))
        chunk = b"\0" * (1 << 20)
        with zf.open("dog/huge.png", "w", force_zip64=True) as fh:
            for _ in range(300):
                fh.write(chunk)
    assert path.stat().st_size < 2 * 1024**2
    return path


def test_zip_bomb_is_refused_without_decompressing(bomb_zip, monkeypatch):
    opened = []
    real_open = zipfile.ZipFile.open

    def spy_open(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy_open)
    t0 = time.perf_counter()
    with pytest.raises(ds.DatasetError, match=r"zip bomb.*dog/huge\.png"):
        ds.from_zip(bomb_zip)
    assert time.perf_counter() - t0 < 5
    assert opened == []  # refused from the central directory alone


def test_zip_total_size_limit(tmp_path, monkeypatch):
    z = make_zip(
        tmp_path / "large.zip",
        {f"c{i % 2}/{i}.png": b"\0" * 400_000 for i in range(4)},
    )
    monkeypatch.setenv("EXPLORER_MAX_ZIP_MB", "1")
    with pytest.raises(ds.DatasetError, match=r"expands to 1\.53 MB uncompressed.*limit of 1 MB"):
        ds.from_zip(z)


def test_zip_member_that_lies_about_its_size_is_bounded(tmp_path):
    """A member whose central-directory size is patched down is read only up to that size."""
    z = tmp_path / "liar.zip"
    make_zip(
        z,
        {
            "cat/1.png": png(),
            "cat/2.png": png(),
            "dog/1.png": png((0, 0, 255)),
            "dog/liar.png": b"\0" * 20_000_000,
        },
    )
    raw = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("dog/liar.png")
    # the name's last occurrence is in the central directory, 46 bytes into its entry;
    # the entry's uncompressed size sits at +24
    entry = raw.rfind(b"dog/liar.png") - 46
    assert raw[entry : entry + 4] == b"PK\x01\x02"
    raw[entry + 24 : entry + 28] = struct.pack("<I", 1000)
    z.write_bytes(bytes(raw))
    with zipfile.ZipFile(z) as zf:
        assert zf.getinfo("dog/liar.png").file_size == 1000 < info.file_size

    s = ds.from_zip(z)
    assert s.labels == ["cat", "cat", "dog"]
    assert [p for p, _ in s.skipped] == ["dog/liar.png"]
    assert "damaged" in s.skipped[0][1]


def test_zip_with_too_many_images_is_refused_before_decoding(tmp_path, monkeypatch):
    """10,000 one-byte '.png' members: the count comes from the central directory, so the
    refusal needs no decoding (decision: the image count is checked before any member is read)."""
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for k in range(10_000):
            zf.writestr(f"root/c{k % 3}/{k}.png", b"x")
    calls = []
    monkeypatch.setattr(imaging, "load_image", lambda *a, **k: calls.append(a))
    t0 = time.perf_counter()
    with pytest.raises(ds.DatasetError) as info:
        ds.from_zip(z, max_images=500)
    assert time.perf_counter() - t0 < 5
    msg = str(info.value)
    assert "10,000 images" in msg and "limit of 500" in msg
    assert "fewer images" in msg and "EXPLORER_MAX_SET_IMAGES" in msg
    assert calls == []


def test_max_images_from_environment(tmp_path, monkeypatch):
    z = make_zip(tmp_path / "six.zip", {f"c{i % 2}/{i}.png": png() for i in range(6)})
    monkeypatch.setenv("EXPLORER_MAX_SET_IMAGES", "5")
    with pytest.raises(ds.DatasetError, match="6 images, more than the limit of 5"):
        ds.from_zip(z)
    assert len(ds.from_zip(z, max_images=6)) == 6
    with pytest.raises(ValueError):
        ds.from_zip(z, max_images=0)


# --------------------------------------------------------------------------------------------
# folder and uploads
# --------------------------------------------------------------------------------------------


def test_folder_matches_zip(tmp_path):
    tree = make_tree(tmp_path / "tree", TREE)
    z = tmp_path / "tree.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted(tree.rglob("*")):
            zf.write(f, f.relative_to(tree).as_posix())
    from_folder = ds.from_folder(tree)
    from_zip = ds.from_zip(z)
    assert dict(zip(from_folder.paths, from_folder.labels, strict=True)) == TREE_LABELS
    assert (from_folder.paths, from_folder.labels) == (from_zip.paths, from_zip.labels)
    assert from_folder.skipped == from_zip.skipped == [("notes.txt", "not an image ('.txt' file)")]
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(from_folder.images, from_zip.images, strict=True)
    )
    with pytest.raises(ds.DatasetError, match="holds more than 3 images, the limit of 3"):
        ds.from_folder(tree, max_images=3)
    with pytest.raises(ds.DatasetError, match="No folder was found"):
        ds.from_folder(tmp_path / "nope")


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("cat_01.jpg", "cat"),
        ("dog-3.png", "dog"),
        ("bird12.webp", "bird"),
        ("Golden Retriever_1.jpeg", "golden retriever"),
        ("cat (2).jpg", "cat"),
        ("/tmp/gradio/abc123/Cat_7.png", "cat"),
        ("0001.png", "unlabelled"),
        ("_x.png", "unlabelled"),
        ("sunset.jpg", "sunset"),
    ],
)
def test_label_from_filename(name, label):
    assert ds.label_from_filename(name) == label


def test_from_files(tmp_path):
    files = make_tree(
        tmp_path,
        {
            "cat_01.png": png(),
            "cat-02.png": png(),
            "dog3.png": png((0, 0, 255)),
            "0001.png": png((0, 255, 0)),
            "notes.png": b"not an image at all, just text",
        },
    )
    paths = [
        str(files / n) for n in ("cat_01.png", "cat-02.png", "dog3.png", "0001.png", "notes.png")
    ]
    s = ds.from_files(paths)
    assert s.labels == ["cat", "cat", "dog", "unlabelled"]
    assert s.paths == ["cat_01.png", "cat-02.png", "dog3.png", "0001.png"]
    assert [p for p, _ in s.skipped] == ["notes.png"]
    assert "not an image" in s.skipped[0][1]

    given = ds.from_files(paths[:3], labels=["x", "y", "x"])
    assert given.labels == ["x", "y", "x"]
    single_class = ds.from_files(paths[:2] + paths[3:4], labels=["a", "a", "a"])
    assert single_class.classes == ["a"]  # uploads may be a single class
    with pytest.raises(ValueError, match="2 labels for 3 files"):
        ds.from_files(paths[:3], labels=["a", "b"])
    with pytest.raises(ds.DatasetError, match="Only 2 readable images"):
        ds.from_files(paths[:2] + paths[4:])
    with pytest.raises(ds.DatasetError, match="more than the limit of 2"):
        ds.from_files(paths, max_images=2)


# --------------------------------------------------------------------------------------------
# Hub
# --------------------------------------------------------------------------------------------


def test_from_hub_offline_env_fails_fast(monkeypatch):
    """HF_HUB_OFFLINE is read at call time (huggingface_hub reads it only at import), and no
    connection is attempted."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)

    def no_network(*_a, **_k):
        raise AssertionError("an offline check must not open a connection")

    monkeypatch.setattr(hub, "_can_connect", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(ds.DatasetUnavailableError) as info:
        ds.from_hub("owner/some-images")
    assert time.perf_counter() - t0 < 2
    msg = str(info.value)
    assert "needs internet" in msg and "HF_HUB_OFFLINE" in msg and "zip" in msg
    assert isinstance(info.value, ModelUnavailableError) and isinstance(info.value, ExplorerError)


def test_from_hub_unreachable_host_fails_fast(monkeypatch):
    """The real reachability check, with the socket layer stubbed to refuse / hang."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)

    def refuse(address, timeout=None, *a, **k):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(ds.DatasetUnavailableError, match=r"needs internet.*could not be reached"):
        ds.from_hub("owner/some-images")

    def hang(address, timeout=None, *a, **k):
        time.sleep(10)  # a black-holed connection or a DNS lookup that never answers
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    t0 = time.perf_counter()
    with pytest.raises(ds.DatasetUnavailableError, match=r"within 0\.5 s"):
        ds.from_hub("owner/some-images", timeout=0.5)
    assert time.perf_counter() - t0 < 3


def test_from_hub_bad_id():
    with pytest.raises(ds.DatasetError, match="not a Hugging Face dataset id"):
        ds.from_hub("not a valid id!")


def test_from_hub_streams_per_class(monkeypatch):
    """Column detection and per-class sampling, on a local in-memory dataset."""
    hf = pytest.importorskip("datasets")
    names = ["airplane", "bird", "cat"]
    rows = []
    for i in range(30):
        data = b"garbage" if i == 1 else noise_png(i, 16)
        rows.append({"img": {"bytes": data, "path": None}, "fine": i % 3, "note": f"row {i}"})
    features = hf.Features(
        {"img": hf.Image(), "fine": hf.ClassLabel(names=names), "note": hf.Value("string")}
    )
    local = hf.Dataset.from_list(rows, features=features).to_iterable_dataset()
    calls = []

    def fake_load(dataset_id, split=None, streaming=False, **kw):
        calls.append((dataset_id, split, streaming))
        return local

    monkeypatch.setattr(ds, "hub_unreachable_reason", lambda timeout=3.0: None)
    monkeypatch.setattr(hf, "load_dataset", fake_load)
    s = ds.from_hub("owner/tiny", per_class=3)
    assert calls == [("owner/tiny", "train", True)]
    assert s.class_counts() == {"airplane": 3, "bird": 3, "cat": 3}
    assert s.paths[:3] == ["owner/tiny[0]", "owner/tiny[2]", "owner/tiny[3]"]
    assert [p for p, _ in s.skipped] == ["owner/tiny[1]"]
    assert all(im.mode == "RGB" for im in s.images)
    assert "'img' and 'fine'" in s.description

    capped = ds.from_hub("owner/tiny", per_class=10, max_images=5)
    assert len(capped) == 5
    with pytest.raises(ds.DatasetError, match="no column 'pixels'"):
        ds.from_hub("owner/tiny", image_column="pixels")


# --------------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------------


def test_load_source_dispatch(tmp_path, monkeypatch):
    tree = make_tree(tmp_path / "tree", TREE)
    z = make_zip(tmp_path / "set.zip", {k: v for k, v in TREE.items()})
    folder_set = ds.load_source(str(tree))
    assert dict(zip(folder_set.paths, folder_set.labels, strict=True)) == TREE_LABELS
    # options meant for another source (per_class) are ignored
    assert ds.load_source(z, per_class=3, max_images=100).labels == ["cat", "cat", "dog", "dog"]
    assert ds.load_source(" bundled ", n_aug=0, max_images=5).name == "bundled"
    with pytest.raises(TypeError):
        ds.load_source(z, not_an_option=1)
    with pytest.raises(ds.DatasetError, match="was not found"):
        ds.load_source(str(tmp_path / "missing.zip"))
    with pytest.raises(ds.DatasetError, match="was not found"):
        ds.load_source("cats")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ds.DatasetUnavailableError, match="needs internet"):
        ds.load_source("owner/name", per_class=2, n_aug=3)
