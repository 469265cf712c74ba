"""Image sets from files (zip / folder / uploads) and their safety rules, and ``load_source``.

Every zip is built in ``tmp_path`` with :mod:`zipfile`; nothing is downloaded. The bundled set,
the ImageSet type and Hub streaming have their own test files.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from image_files import listing, make_tree, make_zip, noise_png, png
from PIL import Image

from explorer import datasets as ds
from explorer.core.errors import ExplorerError
from explorer.images import io as imaging


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
    # each skip carries the short form given where the file failed (the loader's error)
    assert {k.path: k.short for k in s.skipped} == {
        "cat/text.jpg": "not an image Pillow can read",
        "dog/truncated.png": "damaged or incomplete",
        "dog/empty.png": "empty",
    }
    assert s.summary().endswith(
        "3 files skipped: cat/text.jpg (not an image Pillow can read), "
        "dog/empty.png (empty), dog/truncated.png (damaged or incomplete)"
    )


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
    assert {k.short for k in s.skipped} == {"nested archive"}


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
    assert {k.short for k in s.skipped if k.path in unsafe} == {"unsafe path"}
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
    with pytest.raises(ds.DatasetError, match=r"zip bomb.*dog/huge\.png"):
        ds.from_zip(bomb_zip)
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
    assert s.summary().endswith("1 file skipped: dog/liar.png (damaged)")


def test_zip_with_too_many_images_is_refused_before_decoding(tmp_path, monkeypatch):
    """10,000 one-byte '.png' members: the count comes from the central directory, so the
    refusal needs no decoding (decision: the image count is checked before any member is read)."""
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for k in range(10_000):
            zf.writestr(f"root/c{k % 3}/{k}.png", b"x")
    calls = []
    monkeypatch.setattr(imaging, "load_image", lambda *a, **k: calls.append(a))
    with pytest.raises(ds.DatasetError) as info:
        ds.from_zip(z, max_images=500)
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
# dispatch
# --------------------------------------------------------------------------------------------


def test_load_source_dispatch(tmp_path, monkeypatch):
    tree = make_tree(tmp_path / "tree", TREE)
    z = make_zip(tmp_path / "set.zip", {k: v for k, v in TREE.items()})
    folder_set = ds.load_source(str(tree))
    assert dict(zip(folder_set.paths, folder_set.labels, strict=True)) == TREE_LABELS
    # options meant for another source (per_class) are ignored
    assert ds.load_source(z, per_class=3, max_images=100).labels == ["cat", "cat", "dog", "dog"]
    assert ds.load_source(" augmented ", n_aug=0, max_images=5).name == "augmented"
    assert ds.load_source("bundled").name == "teaching"
    with pytest.raises(TypeError):
        ds.load_source(z, not_an_option=1)
    with pytest.raises(ds.DatasetError, match="was not found"):
        ds.load_source(str(tmp_path / "missing.zip"))
    with pytest.raises(ds.DatasetError, match="was not found"):
        ds.load_source("cats")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ds.DatasetUnavailableError, match="needs internet"):
        ds.load_source("owner/name", per_class=2, n_aug=3)
