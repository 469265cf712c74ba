"""The atlas panels in Chromium at 10k / 100k / 1M points a panel, three panels: time to first
paint, time to answer a click and a hover, JS heap, payload bytes. A benchmark, not a test.

Two ways in, both drawing with the app's own explorer/static/atlas.js (and scatter.js) and the
payload of explorer/ui/atlas/payload.py, on the same saved synthetic atlases
(bench.synthetic_atlas: clustered points, labels, generated 24 px thumbnails):

* ``page``: atlas.js in a bare page served by this script, fed the real ``payload()`` (its JSON
  and its binary columns); a click is answered by this script computing the real ``update``
  payload (``atlas.neighbours``: the saved atlas's neighbour lists). The browser's own cost.
* ``app``: the real app (``python app.py``, started by this script) opening the saved folder
  through "A saved atlas folder"; first paint counts from the click on "Open the folder", so it
  includes reading and checking the folder, the tables and the Gradio round trip (measured
  ``--settle`` seconds after the app started, once its UMAP warm-up has run).

    python -m bench.browser_scale [OUT] [--sizes 10000 100000 1000000] [--app-sizes 10000 1000000]

Writes OUT/browser_scale.json and OUT/browser_scale.md (Markdown table for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.server
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.common import RESULTS, cpu_name
from bench.synthetic_atlas import LOCATE, write

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-gpu", "--enable-precise-memory-info"]  # fmt: skip
VIEWPORT = {"width": 1920, "height": 1080}

# records, in the page, when the panels were painted and when the mouse went down
PROBE = """
() => {
  const root = document.querySelector('.atlas-root');
  window.__paints = [];
  new MutationObserver(() => {
    window.__paints.push([root.dataset.rendered || '', performance.now(), root.dataset.renderMs]);
  }).observe(root, { attributes: true, attributeFilter: ['data-rendered'] });
  document.addEventListener('mousedown', () => { window.__down = performance.now(); }, true);
}
"""

HARNESS = """<!doctype html><html><head><meta charset="utf-8">
<script src="/scatter.js"></script><style>body{font-family:sans-serif;margin:16px}%CSS%</style>
</head><body><div id="atlas-view" style="position:relative"><div class="atlas-root"></div></div>
<script>
const element = document.getElementById('atlas-view');
const props = { value: '' };
const watchers = [];
function watch(name, fn) { watchers.push(fn); }
function trigger(name, data) {
  fetch('/update?i=' + data.index).then((r) => r.text()).then((t) => window.__set(t));
}
window.__set = (v) => { props.value = v; watchers.forEach((f) => f()); };
</script><script src="/atlas.js"></script></body></html>"""


def _heap(cdp) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["JSHeapUsedSize"] / 2**20


def _wait_paint(page, kind: str, since: int, timeout_ms: int) -> dict:
    page.wait_for_function(
        f"() => (window.__paints || []).slice({since}).some((p) => p[0].startsWith('{kind}'))",
        timeout=timeout_ms,
        polling=50,
    )
    got = page.evaluate(
        f"() => window.__paints.slice({since}).filter((p) => p[0].startsWith('{kind}'))[0]"
    )
    return {"at": got[1], "render_ms": float(got[2] or "nan")}


def _interactive(page, paint: dict, since: float, timeout_ms: int) -> tuple[str, float]:
    """Wait until every panel answers hover and click (atlas.js fills the panels' indexes after
    the first paint) -> (the phases atlas.js recorded, ms from ``since`` to interactive)."""
    page.wait_for_function(
        "() => (document.querySelector('.atlas-root').dataset.phases || '').includes('interactive')",
        timeout=timeout_ms,
        polling=50,
    )
    phases = page.evaluate("() => document.querySelector('.atlas-root').dataset.phases")
    at = dict(p.split(":") for p in phases.split(","))
    return phases, paint["at"] - paint["render_ms"] + float(at["interactive"]) - since


def _click_once(page, panel: int, timeout_ms: int) -> dict:
    """Hover then click a point of ``panel``; ms from mouse-down to the overlays repainted with
    the neighbours, and from hover to the thumbnail shown (fetched then)."""
    page.locator(".atlas-panel").nth(panel).scroll_into_view_if_needed()
    where = page.evaluate(LOCATE, [panel])
    page.mouse.move(where["px"] - 30, where["py"] - 30)
    page.evaluate(
        "() => { const t = document.querySelector('.atlas-tip'); if (t) t.style.display = 'none'; }"
    )
    t_hover = page.evaluate("() => performance.now()")
    page.mouse.move(where["px"], where["py"], steps=4)
    page.wait_for_function(
        "() => { const t = document.querySelector('.atlas-tip'); const i = t && t.querySelector('img');"
        " return t && t.style.display === 'block' && i.complete && i.naturalWidth > 0; }",
        timeout=timeout_ms,
    )
    hover_ms = page.evaluate("() => performance.now()") - t_hover
    since = page.evaluate("() => window.__paints.length")
    page.mouse.down()
    page.mouse.up()
    got = _wait_paint(page, "update", since, timeout_ms)
    return {"click_ms": got["at"] - page.evaluate("() => window.__down"), "hover_ms": hover_ms}


def _click_and_measure(page, timeout_ms: int) -> dict:
    """Three clicks (one per panel): the median times, and what the last one left on screen."""
    runs = [
        _click_once(page, p % page.locator(".atlas-panel").count(), timeout_ms) for p in range(3)
    ]
    clicked = page.evaluate("() => document.querySelector('.atlas-panel').dataset.selected")
    stars = page.evaluate(
        "() => [...document.querySelectorAll('.atlas-panel')].map((d) => d.dataset.selected)"
    )
    nbrs = page.evaluate(
        "() => [...document.querySelectorAll('.atlas-panel')].map((d) => d.dataset.neighbors.split(',').filter(Boolean).length)"
    )
    clicks = sorted(r["click_ms"] for r in runs)
    hovers = sorted(r["hover_ms"] for r in runs)
    return {"clicked": int(clicked), "click_ms": clicks[1], "click_ms_all": clicks,
            "hover_thumb_ms": hovers[1], "hover_ms_all": hovers,
            "selected_in_panels": stars, "neighbours_in_panels": nbrs}  # fmt: skip


class _Handler(http.server.BaseHTTPRequestHandler):
    atlas = None
    full = b""
    harness = b""

    def log_message(self, *args) -> None:
        pass

    def _send(self, body: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        from explorer import atlas as A
        from explorer.ui.atlas.payload import payload
        from explorer.ui.components import STATIC, scatter_js

        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/":
            self._send(self.harness, "text/html")
        elif url.path == "/scatter.js":
            self._send(scatter_js().read_bytes(), "text/javascript")
        elif url.path == "/atlas.js":
            self._send((STATIC / "atlas.js").read_bytes(), "text/javascript")
        elif url.path == "/payload":
            self._send(self.full, "application/json")
        elif url.path == "/update":
            i = int(q["i"][0])
            nb = {k: [j for j, _ in v] for k, v in A.neighbours(self.atlas, i, 6).items()}
            body = payload(self.atlas, "pca", _thumb_url, selected=i, neighbors=nb, update=True)
            self._send(body.encode(), "application/json")
        elif url.path == "/file":  # a thumbnail, or the payload's binary columns
            path = Path(q["p"][0]).resolve()
            if path.is_relative_to(A.thumb_dir().resolve()):
                kind = "image/jpeg" if path.suffix == ".jpg" else "application/octet-stream"
                self._send(path.read_bytes(), kind)
            else:
                self.send_error(404)
        else:
            self.send_error(404)


def _file_bytes(columns: dict) -> int:
    """The columns' file size (0: they travel inline in the JSON)."""
    return 0 if "inline" in columns else columns["bytes"]


def _thumb_url(path: str) -> str:
    return "/file?p=" + urllib.parse.quote(path)


@contextlib.contextmanager
def serving(a, method: str, port: int):
    """The bare page for atlas ``a`` (its ``method`` map) on 127.0.0.1:port, while in the
    block: ``/`` the page (atlas.js and scatter.js, as the app loads them), ``/payload`` the
    real ``payload()``, ``/update?i=`` the real click update. -> (the page's URL, the payload)."""
    from explorer.ui.atlas.payload import payload
    from explorer.ui.components import STATIC

    full = payload(a, method, _thumb_url)
    _Handler.atlas, _Handler.full = a, full.encode()
    _Handler.harness = HARNESS.replace("%CSS%", (STATIC / "atlas.css").read_text()).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/", full
    finally:
        server.shutdown()
        server.server_close()


def open_page(page, url: str, before=None) -> float:
    """Load the bare page, call ``before()`` (if given), and hand the page its payload -> the
    page's clock when the payload was asked for (the panels then draw; :func:`_wait_paint`)."""
    page.goto(url)
    page.wait_for_function("() => typeof AtlasScatter !== 'undefined'")
    page.evaluate(PROBE)
    if before is not None:
        before()
    return page.evaluate(
        "async () => { const t0 = performance.now(); const r = await fetch('/payload');"
        " window.__set(await r.text()); return t0; }"
    )


def run_page(browser, n: int, a, method: str, port: int, shots: Path | None = None) -> dict:
    """The page way in for atlas ``a`` (its ``method`` map) of n points -> the row."""
    from explorer import atlas as A
    from explorer.ui.atlas.payload import payload

    t = time.perf_counter()
    payload(a, method, _thumb_url)
    payload_s = time.perf_counter() - t  # (the columns file is then on disk: served as it is)
    with serving(a, method, port) as (url, full):
        page = browser.new_page(viewport=VIEWPORT)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        idle = []
        t0 = open_page(page, url, lambda: idle.append(_heap(cdp)))
        heap0 = idle[0]
        got = _wait_paint(page, "full", 0, 300_000)
        phases, interactive = _interactive(page, got, t0, 300_000)
        out = {"mode": "page", "phases": phases, "n": n, "paint_ms": got["at"] - t0, "render_ms": got["render_ms"],
               "interactive_ms": interactive,
               "payload_bytes": len(_Handler.full) + _file_bytes(json.loads(full)["columns"]),
               "json_bytes": len(_Handler.full), "payload_build_s": payload_s,
               "drawn": json.loads(full)["drawn"],
               "heap_idle_mb": heap0, "heap_mb": _heap(cdp)}  # fmt: skip
        out.update(_click_and_measure(page, 120_000))
        if shots:
            for vp in ({"width": 1280, "height": 800}, {"width": 1920, "height": 1080}):
                page.set_viewport_size(vp)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(shots / f"page-{n}-{vp['width']}.png"))
            page.set_viewport_size(VIEWPORT)
        nb = {k: [j for j, _ in v] for k, v in A.neighbours(a, out["clicked"], 6).items()}
        upd = payload(a, method, _thumb_url, selected=out["clicked"], neighbors=nb, update=True)
        out["update_bytes"] = len(upd)
        out["heap_after_click_mb"] = _heap(cdp)
        page.close()
        return out


def run_app(
    browser, n: int, folder: Path, port: int, shots: Path | None, settle_s: float = 30
) -> dict:
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), EXPLORER_PLUGINS="tests.tiny_models",
               EXPLORER_MAX_SET_IMAGES=str(max(n, 100_000)), EXPLORER_ATLAS_MEMORY_MB="8192")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(1)
        # the app's first seconds import and compile UMAP in the background (its warm-up): the
        # open is measured after them, as a visitor arriving at a running app would see it
        time.sleep(settle_s)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(120_000)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(url)
        page.get_by_role("tab", name="Semantic atlas").click()
        page.get_by_text("pca", exact=True).click()  # the saved map; no UMAP switch afterwards
        page.get_by_text("A saved atlas folder").click()
        page.get_by_label("Folder written by `python -m explorer atlas`").fill(str(folder))
        page.wait_for_selector(".atlas-root")
        page.evaluate(PROBE)
        heap0 = _heap(cdp)
        page.get_by_role("button", name="Open the folder").click()
        t0 = page.evaluate("() => performance.now()")
        got = _wait_paint(page, "full", 0, 3_000_000)
        phases, interactive = _interactive(page, got, t0, 600_000)
        out = {"mode": "app", "phases": phases, "n": n, "open_to_paint_ms": got["at"] - t0,
               "interactive_ms": interactive,
               "render_ms": got["render_ms"], "heap_idle_mb": heap0, "heap_mb": _heap(cdp)}  # fmt: skip
        title = page.locator(".atlas-panel .atlas-title").first.text_content()
        out["title"] = title
        if shots:
            for vp in ({"width": 1280, "height": 800}, {"width": 1920, "height": 1080}):
                page.set_viewport_size(vp)
                page.wait_for_timeout(1500)
                page.locator("#atlas-view").scroll_into_view_if_needed()
                page.screenshot(path=str(shots / f"atlas-{n}-{vp['width']}.png"))
            page.set_viewport_size(VIEWPORT)
            page.wait_for_timeout(1000)
        out.update(_click_and_measure(page, 600_000))
        out["heap_after_click_mb"] = _heap(cdp)
        if shots:
            page.set_viewport_size({"width": 1280, "height": 800})
            page.wait_for_timeout(1500)
            page.screenshot(path=str(shots / f"atlas-{n}-clicked-1280.png"), full_page=True)
        page.close()
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def _bytes(r: dict) -> str:
    """A page row's payload: its JSON, and its columns' file where they are not inline."""
    json_kb, rest = r["json_bytes"] / 1024, r["payload_bytes"] - r["json_bytes"]
    return (
        f"{json_kb:.1f} kB + {rest / 2**20:.2f} MB"
        if rest
        else f"{json_kb:.1f} kB (columns inline)"
    )


def markdown(rows: list[dict], info: dict) -> str:
    lines = [
        f"Chromium {info['chromium']}, headless, `--disable-gpu` (WebGL in software), "
        f"viewport 1920×1080, three panels; {info['cpu']}, {info['cores']} cores. "
        f"Display cap {info['cap']:,} points. {info['date']}.",
        "",
        "| points a panel | drawn | way in | first paint | of which in the page | hover and click answered "
        "| click → star + neighbours (median of 3) "
        "| hover → thumbnail (median of 3) | JS heap after paint | payload (JSON + columns) | click's update |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        paint = r.get("paint_ms", r.get("open_to_paint_ms", float("nan")))
        way = "page (atlas.js + payload)" if r["mode"] == "page" else "app (open saved folder)"
        lines.append(
            f"| {r['n']:,} | {r.get('drawn', '')} | {way} | {paint / 1000:.2f} s "
            f"| {r['render_ms'] / 1000:.2f} s | "
            + (f"{r['interactive_ms'] / 1000:.2f} s" if "interactive_ms" in r else "with the paint")
            + f" | {r['click_ms']:.0f} ms | {r['hover_thumb_ms']:.0f} ms "
            f"| {r['heap_mb']:.0f} MB | "
            + (_bytes(r) if "payload_bytes" in r else "")
            + " | "
            + (f"{r['update_bytes']:,} B" if "update_bytes" in r else "")
            + " |"
        )
    lines += ["", "Where the page's time went (ms from the payload's arrival: columns fetched, "
              "panels laid out, points drawn, and the panels' indexes filled after the paint):", ""]  # fmt: skip
    lines += [f"* {r['n']:,} {r['mode']}: {r.get('phases', '')}" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, nargs="?", default=RESULTS / "browser_scale")
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--app-sizes", type=int, nargs="*", default=[10_000, 1_000_000])
    ap.add_argument("--data", type=Path, default=Path("/tmp/browser-scale-atlases"))
    ap.add_argument("--port", type=int, default=7961)
    ap.add_argument("--shots", type=Path, default=None, help="screenshots of the app runs here")
    ap.add_argument(
        "--settle", type=float, default=30, help="seconds between the app's start and the open"
    )
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from explorer import atlas as A
    from explorer.core import settings

    args.out.mkdir(parents=True, exist_ok=True)
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        info = {"chromium": browser.version, "cpu": cpu_name(), "cores": os.cpu_count(),
                "python": platform.python_version(), "cap": settings.get().display_max_points,
                "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}  # fmt: skip
        for n in sorted(set(args.sizes) | set(args.app_sizes)):
            t = time.perf_counter()
            folder = write(n, args.data / f"syn-{n}")  # skipped when already written
            print(f"folder {n}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
            if n in args.sizes:
                print(f"page {n}", file=sys.stderr, flush=True)
                a, method = A.load_saved(folder)  # the folder the app opens
                rows.append(run_page(browser, n, a, method, args.port, args.shots))
                del a
                print(rows[-1], file=sys.stderr, flush=True)
            if n in args.app_sizes:
                print(f"app {n}", file=sys.stderr, flush=True)
                rows.append(run_app(browser, n, folder, args.port + 1, args.shots, args.settle))
                print(rows[-1], file=sys.stderr, flush=True)
            (args.out / "browser_scale.json").write_text(
                json.dumps({"info": info, "rows": rows}, indent=1)
            )
        browser.close()
    (args.out / "browser_scale.md").write_text(markdown(rows, info))
    print(markdown(rows, info))


if __name__ == "__main__":
    main()
