"""Hostile files through every upload path of the running app.

Each image of ``tests/corpus.py`` goes through (a) the lab's ``/encode``, (b) the atlas query
image ``/atlas_query_image`` (in a session with an open set) and (c) ``/atlas_upload`` beside
three good images; each zip of :func:`corpus.build_zip_corpus` through (d) ``/atlas_upload``.
Every case must load (bad members skipped and named in the status) or be refused with a clear
sentence; the app must answer the next normal request; bombs must be refused without the
memory to decode them; and no zip case may write anything outside the app's own temporary
folders (the traversal members least of all).

One app for the whole module (the session's ``app_url``), corpora built once in a tmp folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from corpus import (
    CASE_NAMES,
    TRAVERSAL_NAMES,
    ZIP_CASE_NAMES,
    ZIP_CLASSES,
    CorpusCase,
    build_corpus,
    build_zip_corpus,
    write_good_images,
)
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from explorer.datasets import label_from_filename
from tests.helpers import atlas_of

pytestmark = pytest.mark.app

ROOT = Path(__file__).resolve().parents[1]
LAB = ("test-tiny", 64, "square", "", "shared")
SPACES = (["VAE", "CLIP", "DINOv2"], "test-tiny", "test-clip", "test-dino", "test-vit", "pca", "")
CALL_TIMEOUT_S = 60  # a hang is a failure, not a stuck test run
PEAK_LIMIT_MB = 400  # decoding the 900 MP bomb would take >= 900 MB


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad-inputs")


@pytest.fixture(scope="module")
def corpus(work) -> dict[str, CorpusCase]:
    return build_corpus(work / "images")


@pytest.fixture(scope="module")
def zips(work) -> dict[str, CorpusCase]:
    return build_zip_corpus(work / "zips")


@pytest.fixture(scope="module")
def good(work) -> list[Path]:
    return write_good_images(work / "good")


def new_client(app_url: str) -> Client:
    """A session of its own; outputs are not downloaded (only their presence is checked)."""
    return Client(app_url, verbose=False, download_files=False)


@pytest.fixture(scope="module")
def lab_client(app_url) -> Client:
    return new_client(app_url)


@pytest.fixture(scope="module")
def query_client(app_url, good) -> Client:
    """A session of its own with the three good images open as a set."""
    client = new_client(app_url)
    call(client, [handle_file(p) for p in good], *SPACES, api_name="/atlas_upload")
    return client


@pytest.fixture(scope="module")
def upload_client(app_url) -> Client:
    return new_client(app_url)


def _case(cases: dict[str, CorpusCase], name: str) -> CorpusCase:
    if name not in cases:
        pytest.skip(f"{name} not built here (codec missing from this Pillow build)")
    return cases[name]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def call(client: Client, *args, api_name: str):
    return client.submit(*args, api_name=api_name).result(timeout=CALL_TIMEOUT_S)


def refused(client: Client, *args, api_name: str) -> str:
    """Call an endpoint that must refuse; -> its message, checked to be a clear sentence."""
    with pytest.raises(AppError) as err:
        call(client, *args, api_name=api_name)
    msg = str(err.value).strip()
    assert msg.endswith((".", ".)")), msg
    assert "Traceback" not in msg and 'File "' not in msg, msg
    assert not re.search(r"\b\w+(Error|Exception): ", msg), msg  # an unexpected exception's repr
    assert len(msg) < 600, msg
    return msg


def app_answers(client: Client, astronaut: Path) -> None:
    """The app still answers an ordinary request correctly."""
    summary, *_ = call(client, handle_file(astronaut), *LAB, api_name="/encode")
    assert "4×8×8" in summary


def _hwm_kb() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@contextlib.contextmanager
def peak_memory_below(limit_mb: int = PEAK_LIMIT_MB) -> Iterator[None]:
    """The app runs in this process: its peak RSS during the block may grow by < limit_mb.

    The peak is reset first where Linux allows it (``/proc/self/clear_refs``); elsewhere
    ``ru_maxrss`` only catches a peak above this process's earlier ones.
    """
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _hwm_kb()
    yield
    grown_mb = (_hwm_kb() - before) / 1024
    assert grown_mb < limit_mb, f"peak memory grew by {grown_mb:.0f} MB"


_PRUNE = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"}


def _listing(root: Path, recursive: bool) -> set[str]:
    if not root.is_dir():
        return set()
    if not recursive:
        with contextlib.suppress(OSError):
            return set(os.listdir(root))
        return set()
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _PRUNE]
        rel = os.path.relpath(dirpath, root)
        out.update(os.path.normpath(os.path.join(rel, n)) for n in dirnames + filenames)
    return out


def _watched(work: Path) -> dict[str, tuple[Path, bool]]:
    """Where an extracted or traversing member could land: (folder, walk it recursively)."""
    import gradio.utils

    from explorer.core import files

    return {
        "test folder": (work, True),
        "repo": (ROOT, True),
        "repo parent": (ROOT.parent, False),
        "home": (Path.home(), False),
        "tmp": (Path(tempfile.gettempdir()), False),
        "gradio uploads": (Path(gradio.utils.get_upload_folder()), True),
        "app tmp": (files.tmp_root(), True),
    }


def snapshot(work: Path) -> dict[str, set[str]]:
    return {k: _listing(root, rec) for k, (root, rec) in _watched(work).items()}


def _member_names(path: Path) -> set[str]:
    """Every component of every member name of a zip (empty for a damaged one)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return set()
    return {p for n in names for p in re.split(r"[\\/]", n) if p not in ("", ".", "..")}


def assert_nothing_written(work: Path, before: dict[str, set[str]], zip_path: Path) -> None:
    """Nothing new in the test folder; nowhere a new entry named like a zip member; and no
    traversal member anywhere under the watched folders."""
    after = snapshot(work)
    assert after["test folder"] == before["test folder"], (
        after["test folder"] - before["test folder"]
    )
    suspects = _member_names(zip_path) | set(TRAVERSAL_NAMES)
    for key in before:
        new = after[key] - before[key]
        bad = sorted(n for n in new if Path(n).name in suspects)
        assert not bad, f"written under {key}: {bad}"
        found = sorted(n for n in after[key] if Path(n).name in TRAVERSAL_NAMES)
        assert not found, f"traversal member found under {key}: {found}"


# --------------------------------------------------------------------------------------------
# (a) the lab: /encode
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
def test_encode(lab_client, corpus, astronaut, name):
    client = lab_client
    case = _case(corpus, name)
    args = (handle_file(case.path), *LAB)
    with peak_memory_below():
        if case.expect == "ok":
            summary, *_ = call(client, *args, api_name="/encode")
            assert "4×8×8" in summary
        else:
            refused(client, *args, api_name="/encode")
    app_answers(client, astronaut)


# --------------------------------------------------------------------------------------------
# (b) the atlas query image: /atlas_query_image
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
def test_atlas_query_image(query_client, corpus, good, astronaut, name):
    case = _case(corpus, name)
    with peak_memory_below():
        if case.expect == "ok":
            galleries = call(
                query_client, handle_file(case.path), "", api_name="/atlas_query_image"
            )
            assert [len(g["value"]) for g in galleries if g["visible"]] == [len(good)] * 3
        else:
            refused(query_client, handle_file(case.path), "", api_name="/atlas_query_image")
    # the session's set is still open and answers a normal query
    galleries = call(query_client, handle_file(astronaut), "", api_name="/atlas_query_image")
    assert [len(g["value"]) for g in galleries if g["visible"]] == [len(good)] * 3


# --------------------------------------------------------------------------------------------
# (c) several images: /atlas_upload with a list of files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
def test_atlas_upload_images(upload_client, corpus, good, astronaut, name):
    case = _case(corpus, name)
    files = [handle_file(p) for p in [*good, case.path]]
    with peak_memory_below():
        out = call(upload_client, files, *SPACES, api_name="/atlas_upload")
    data, status = atlas_of(out[0]), out[1]
    labels = set(data["labels"])
    if case.expect == "ok":
        assert len(data["labels"]) == 4 and "skipped" not in status, status
        assert label_from_filename(case.path.name) in labels
    else:
        assert len(data["labels"]) == 3 and labels == {"ripe", "unripe"}
        assert f"1 file skipped: {case.path.name} (" in status, status
    # the session holds the set just opened
    index, payload, *_ = call(upload_client, 0, api_name="/atlas_select")
    assert index == 0 and json.loads(payload)["base"] == data["base"]  # an update of that set
    app_answers(upload_client, astronaut)


def test_zip_and_images_together_is_refused(upload_client, zips, good):
    files = [handle_file(zips["zip_nested"].path), handle_file(good[0])]
    msg = refused(upload_client, files, *SPACES, api_name="/atlas_upload")
    assert "not both" in msg


# --------------------------------------------------------------------------------------------
# (d) a zip: /atlas_upload
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ZIP_CASE_NAMES)
def test_atlas_upload_zip(app_url, work, zips, astronaut, name):
    case = zips[name]
    client = new_client(app_url)
    before = snapshot(work)
    with peak_memory_below(256):
        if case.expect == "ok":
            out = call(client, [handle_file(case.path)], *SPACES, api_name="/atlas_upload")
            data, status = atlas_of(out[0]), out[1]
            assert sorted(set(data["labels"])) == sorted(ZIP_CLASSES), status
            assert len(data["labels"]) == 4 and case.says in status, status
            index, *_ = call(client, 3, api_name="/atlas_select")
            assert index == 3
        else:
            msg = refused(client, [handle_file(case.path)], *SPACES, api_name="/atlas_upload")
            assert case.says in msg
            with pytest.raises(AppError, match="open one first"):  # no half-opened set
                call(client, 0, api_name="/atlas_select")
    assert_nothing_written(work, before, case.path)
    app_answers(client, astronaut)


def test_zip_total_size_limit(app_url, zips, monkeypatch):
    """A zip whose members are each small but whose total passes EXPLORER_MAX_ZIP_MB."""
    monkeypatch.setenv("EXPLORER_MAX_ZIP_MB", "0.02")  # the tiny-files zip expands to ~60 KB
    client = new_client(app_url)
    path = zips["zip_10000_tiny_files"].path
    msg = refused(client, [handle_file(path)], *SPACES, api_name="/atlas_upload")
    assert "uncompressed, more than the limit" in msg
