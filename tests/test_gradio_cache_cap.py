"""Public mode caps Gradio's upload cache by size (its own sweep goes by age only): the sweep the
app's thread runs deletes the oldest uploads past EXPLORER_TMP_MAX_MB and spares the examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.app
ROOT = Path(__file__).resolve().parents[1]

CODE = """
import json, os, pathlib
from explorer.ui.app import build_demo, _gradio_cap
from gradio.utils import get_upload_folder
demo = build_demo()
if not _gradio_cap:
    raise SystemExit(print(json.dumps({"started": False})))
up = pathlib.Path(get_upload_folder())
for i in range(4):  # four 400 KB uploads, oldest first, all younger than Gradio's age rule
    d = up / f"upload{i}"
    d.mkdir(parents=True)
    (d / "photo.jpg").write_bytes(os.urandom(400_000))
    os.utime(d, (2e9 + i, 2e9 + i))
before = sorted(str(p.relative_to(up)) for p in up.rglob("*") if p.is_file())
removed = _gradio_cap["sweep"]()
after = sorted(str(p.relative_to(up)) for p in up.rglob("*") if p.is_file())
kept = sorted({str(pathlib.Path(f).relative_to(up)) for b in demo.blocks.values()
              for f in getattr(b, "keep_in_cache", ())})
print(json.dumps({"before": before, "after": after, "kept": kept, "removed": removed,
                  "alive": _gradio_cap["thread"].is_alive()}))
"""


def run(tmp_path: Path, public: str) -> dict:
    env = {
        **os.environ,
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
        "EXPLORER_PUBLIC": public,
        "EXPLORER_TMP_MAX_MB": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_public_mode_caps_gradio_uploads_by_size_and_keeps_the_examples(tmp_path):
    got = run(tmp_path, "1")
    uploads = [f"upload{i}/photo.jpg" for i in range(4)]
    assert got["alive"] and got["kept"]  # the thread runs; the lab's examples are in the cache
    assert set(got["before"]) == set(got["kept"]) | set(uploads)
    # 1.6 MB of uploads (+ the examples) into 1 MiB: the oldest go until the rest fit
    examples = len(got["kept"])
    assert got["removed"] >= 2 and set(got["kept"]) <= set(got["after"])
    left = [u for u in uploads if u in got["after"]]
    assert left == uploads[len(uploads) - len(left) :]  # the newest stay
    assert len(got["after"]) == examples + len(left) and len(left) <= 2


def test_without_public_mode_no_cap_is_started(tmp_path):
    assert run(tmp_path, "0") == {"started": False}
