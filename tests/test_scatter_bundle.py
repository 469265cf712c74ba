"""The atlas panels' renderer, explorer/static/scatter.js, is the build of js/package-lock.json:
its banner names the lock file's and the entry's SHA-256 and the bundled regl-scatterplot version,
which must be the versions the lock pins; the app serves the file as it is. (CI also rebuilds it
with `bash js/build.sh --check` where npm is installed: byte for byte.)"""

from __future__ import annotations

import hashlib
import json
import re

from explorer.ui.components import STATIC, scatter_js
from tests.helpers import ROOT

JS = ROOT / "js"


def _banner() -> str:
    return "".join((STATIC / "scatter.js").read_text(encoding="utf-8").splitlines(True)[:2])


def test_the_bundle_names_the_lock_file_it_was_built_from():
    banner = _banner()
    lock = hashlib.sha256((JS / "package-lock.json").read_bytes()).hexdigest()
    entry = hashlib.sha256((JS / "entry.js").read_bytes()).hexdigest()
    assert f"package-lock.json sha256 {lock};" in banner, "rebuild: bash js/build.sh"
    assert f"entry.js sha256 {entry}." in banner, "rebuild: bash js/build.sh"


def test_the_bundled_version_is_the_one_pinned():
    pinned = json.loads((JS / "package.json").read_text())["dependencies"]["regl-scatterplot"]
    locked = json.loads((JS / "package-lock.json").read_text())["packages"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned)  # an exact version, no range
    assert locked["node_modules/regl-scatterplot"]["version"] == pinned
    assert _banner().startswith(f"// regl-scatterplot {pinned} (MIT")
    # every bundled package's license travels with the bundle
    licenses = (STATIC / "scatter.LICENSES.txt").read_text(encoding="utf-8")
    for path, p in locked.items():
        if path and not p.get("dev"):
            name = path.removeprefix("node_modules/")
            assert f"== {name} {p['version']} " in licenses, name


def test_the_app_serves_the_bundle_as_built():
    served = scatter_js()
    data = (STATIC / "scatter.js").read_bytes()
    assert served.read_bytes() == data
    assert hashlib.sha256(data).hexdigest()[:12] in served.name  # a rebuilt file: a new URL
