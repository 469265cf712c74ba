"""The package's layers, read from every module's imports (AST; imports inside functions count):
core <- images, analysis <- models <- spaces <- datasets <- features (lab, atlas, perturb,
playground, classpack) <- ui, cli. A module may import its own layer and the ones below, never
one above."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "explorer"

LAYERS = {
    "core": 0,
    "images": 1,
    "analysis": 1,
    "models": 2,
    "spaces": 3,
    "datasets": 4,
    "lab": 5,
    "atlas": 5,
    "perturb": 5,
    "playground": 5,
    "classpack": 5,
    "ui": 6,
    "cli": 6,
    "__main__": 6,
    "registry": 6,  # the README's plugin API, re-exported from explorer.models.registry
    "taesd": 6,  # likewise, from explorer.models.taesd
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every explorer import in a file, relative ones resolved."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from explorer import ui` names a subpackage: the import is of that package
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names]
    return [(line, t) for line, t in out if t == "explorer" or t.startswith("explorer.")]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def upward_imports(root: Path = PKG) -> list[str]:
    """Every import in ``root`` of a module from a higher layer, as ``file:line a -> b``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        here = _layer(_module(path))
        for line, target in _imports(path):
            there = _layer(target)
            if here is not None and there is not None and there > here:
                found.append(f"{path.relative_to(ROOT)}:{line} {_module(path)} -> {target}")
    return found


def test_every_top_level_name_has_a_layer():
    names = {p.stem if p.is_file() else p.name for p in PKG.iterdir()}
    names = {n for n in names if not n.startswith(("_", ".")) or n == "__main__"}
    names -= {"static", "__pycache__"}
    assert names <= set(LAYERS), f"modules with no layer: {sorted(names - set(LAYERS))}"


def test_no_module_imports_a_higher_layer():
    assert upward_imports() == []


def test_the_check_finds_an_upward_import(tmp_path):
    """The same check on a copy of one core module that imports the UI fails."""
    fake = tmp_path / "explorer" / "core"
    fake.mkdir(parents=True)
    (fake / "settings.py").write_text("from explorer.ui import app\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert upward_imports(tmp_path / "explorer") == [
            "explorer/core/settings.py:1 explorer.core.settings -> explorer.ui.app"
        ]
    finally:
        ROOT = saved


@pytest.mark.parametrize(
    "module, heavy",
    [
        ("explorer.analysis.knn", "torch"),
        ("explorer.core.lru", "torch"),
        ("explorer.core.progress", "torch"),
        ("explorer.datasets.archives", "torch"),
        ("explorer.spaces.cache", "torch"),
        ("explorer.analysis.metrics", "torch"),
        ("explorer.core.public", "torch"),
        ("explorer.models.registry", "torch"),
        ("explorer.analysis.projection", "torch"),
        # imported on first use, not when the app starts (~2 s of its start-up between them)
        ("explorer.analysis.metrics", "scipy.stats"),
        ("explorer.analysis.probe", "sklearn"),
    ],
)
def test_light_modules_import_no_heavy_library(module, heavy):
    code = f"import {module}, sys; assert {heavy!r} not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
