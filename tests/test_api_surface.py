"""The app's API surface, as /gradio_api/info shows it: every endpoint's name, its parameters'
names, components and whether they have defaults, and its returns' components. The snapshot
(tests/data/api_surface.json) is the API that API clients rely on; a change to it is a change
of the public API, made on purpose by updating the snapshot in the same commit."""

from __future__ import annotations

import json
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "data" / "api_surface.json"


def surface(info: dict) -> dict:
    return {
        name: {
            "parameters": [
                [p["parameter_name"], p["component"], p["parameter_has_default"]]
                for p in e["parameters"]
            ],
            "returns": [r["component"] for r in e["returns"]],
        }
        for name, e in sorted(info["named_endpoints"].items())
    }


def test_api_surface_matches_the_snapshot():
    from explorer.ui.app import build_demo

    now = surface(build_demo().get_api_info())
    expected = json.loads(SNAPSHOT.read_text())
    assert sorted(now) == sorted(expected), "endpoints added or removed"
    for name in expected:
        assert now[name] == expected[name], f"{name} changed"
