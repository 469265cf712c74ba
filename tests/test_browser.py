"""The app in a real browser: headless Chromium driven by Playwright, asserting on what a user sees.

Screenshots of each checked screen go to artifacts/screenshots/ (ignored by git, kept by CI).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("EXPLORER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def page(app_url):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it (apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(app_url)
        pg.get_by_text("Latent Space Explorer").first.wait_for()
        yield pg
        browser.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
def test_upload_shows_latent_maps(page, astronaut):
    page.get_by_role("tab", name="VAE lab").click()  # "Start here" is the first tab
    page.locator("#image-a input[type=file]").set_input_files(str(astronaut))
    summary = page.locator("#summary")
    summary.get_by_text("numbers in image").wait_for()
    assert "4×64×64" in summary.inner_text()  # test-tiny at 512: 4 channels, 64×64
    # the channel grid rendered one heatmap per channel in the plotly figure
    page.locator(".js-plotly-plot .heatmaplayer").first.wait_for()
    assert page.locator(".js-plotly-plot .heatmaplayer .hm").count() >= 4
    _shot(page, "lab-latent-maps")


def test_round_trip_shows_psnr(page):
    page.get_by_role("tab", name="Round trip").click()
    page.get_by_role("button", name="Round trip").click()
    page.get_by_text("PSNR", exact=False).filter(has_text="SSIM").first.wait_for()
    text = page.locator("body").inner_text()
    assert "dB" in text and "SSIM" in text
    imgs = page.locator("img[alt], img").evaluate_all(
        "els => els.filter(e => e.naturalWidth >= 256).length"
    )
    assert imgs >= 3  # original, reconstruction, error map
    _shot(page, "lab-round-trip")


@pytest.mark.slow
def test_interpolation_gives_a_gif(page, examples):
    page.get_by_role("tab", name="Interpolate").click()
    page.locator("#image-b input[type=file]").set_input_files(str(examples["coffee"]))
    page.get_by_role("button", name="Interpolate A → B").click()
    page.get_by_text("8 frames, slerp").wait_for()
    # the GIF is shown (an animated <img>) and offered as a download
    gif = page.locator("img[src$='.gif']").first
    gif.wait_for()
    assert gif.evaluate("img => img.naturalWidth") == 256
    link = page.locator("a[download][href$='.gif'], a[href$='.gif']").first
    link.wait_for()
    _shot(page, "lab-interpolation")


def test_channel_edit_changes_the_decode(page):
    page.get_by_role("tab", name="Edit channels").click()
    page.get_by_label("Channel", exact=True).fill("1")
    page.get_by_text("zero", exact=True).click()
    page.get_by_role("button", name="Apply edit").click()
    page.get_by_text("Edited decode vs unedited decode").wait_for()
    note = page.get_by_text("Edited decode vs unedited decode").inner_text()
    assert "dB PSNR" in note and "∞" not in note  # zeroing a channel changed the picture
    assert page.locator(".js-plotly-plot").filter(has_text="channel 1").count() >= 1
    _shot(page, "lab-channel-edit")


# where drawn point k of panel p is on the page, from the panel's own scales (atlas.js keeps
# them on the panel as __atlas)
POINT_AT = """([p, k]) => {
  const q = document.querySelectorAll('.atlas-panel')[p].__atlas, box = q.box.getBoundingClientRect();
  return { x: box.left + q.xScale(q.xs[k]), y: box.top + q.yScale(q.ys[k]) };
}"""


def _click_point(page, panel: int, point: int) -> None:
    """Move onto a drawn point like a user (the renderer finds the point under the mouse) and
    click it."""
    page.locator(".atlas-panel").nth(panel).scroll_into_view_if_needed()  # below a notice, say
    at = page.evaluate(POINT_AT, [panel, point])
    x, y = at["x"], at["y"]
    page.mouse.move(x - 25, y - 25)
    page.mouse.move(x, y, steps=6)
    page.wait_for_timeout(200)
    page.mouse.click(x, y)


@pytest.mark.slow
def test_atlas_click_highlights_in_every_panel(page):
    page.get_by_role("tab", name="Semantic atlas").click()
    page.get_by_role("button", name="Open the teaching set").click()
    from explorer.ui.atlas.layout import default_ticks

    spaces = len(default_ticks())  # VAE, CLIP, DINOv2 (the tiny ones load) and the 3 controls
    page.locator(".atlas-panel[data-drawn]").nth(spaces - 1).wait_for()
    assert spaces == 6 and page.locator(".atlas-panel").count() == spaces
    n_points = int(page.locator(".atlas-panel").first.get_attribute("data-drawn"))
    assert n_points == 112  # the teaching set, every point drawn
    # the metrics table shows one row per space with numbers, the probe beside kNN
    page.wait_for_function(
        "() => ['vae', 'clip', 'dino', 'pixels', 'texture', 'knn5', 'probe'].every("
        "w => document.querySelector('#atlas-metrics').innerText.includes(w))"
    )
    _click_point(page, 1, 10)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.atlas-panel')].every(p => p.dataset.selected !== '')"
    )
    selected = {p.get_attribute("data-selected") for p in page.locator(".atlas-panel").all()}
    assert len(selected) == 1 and selected != {""}  # the same image in all three panels
    # the server answers with neighbours in each space: three galleries of images
    page.wait_for_function(
        "() => [...document.querySelectorAll('.atlas-panel')].every(p => p.dataset.neighbors.split(',').length === 6)"
    )
    page.locator(".atlas-gallery img").first.wait_for()
    assert page.locator(".atlas-gallery").filter(has=page.locator("img")).count() == spaces
    idx = selected.pop()
    assert page.get_by_label("Image #").input_value() == idx
    _shot(page, "atlas-selected")


# the points the renderer shows as selected in a panel
SELECTED_DRAWN = "div => div.__atlas.sp.get('selectedPoints').length"


@pytest.mark.slow
def test_atlas_lasso_in_one_panel_selects_in_every_panel(page):
    """A lasso drawn with the panels' Lasso tool in the first panel selects the same images in
    every panel (the renderer's own selection), shows them in a gallery and says what they
    share."""
    page.get_by_role("tab", name="Semantic atlas").click()
    panels = page.locator(".atlas-panel")
    if not panels.count():
        page.get_by_role("button", name="Open the teaching set").click()
    page.locator(".atlas-panel[data-drawn]").nth(panels.count() - 1).wait_for()
    first = panels.first
    first.scroll_into_view_if_needed()
    page.locator(".atlas-tool[data-mode=lasso]").click()
    box = first.locator(".atlas-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    w, h = box["width"] * 0.3, box["height"] * 0.3
    ring = [
        (cx - w, cy - h),
        (cx + w, cy - h),
        (cx + w, cy + h),
        (cx - w, cy + h),
        (cx - w, cy - h + 2),
    ]
    page.mouse.move(*ring[0])
    page.mouse.down()
    for x, y in ring[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "() => { const ps = [...document.querySelectorAll('.atlas-panel')];"
        " return ps.length > 1 && ps[0].dataset.selection"
        " && ps.every(p => p.dataset.selection === ps[0].dataset.selection); }"
    )
    chosen = first.get_attribute("data-selection").split(",")
    assert len(chosen) >= 2
    for p in panels.all():  # the renderer's own highlight, in every panel
        assert p.evaluate(SELECTED_DRAWN) == len(chosen)
    # the server's answer: what they share, and a gallery of them
    sentence = page.locator("#atlas-selection")
    sentence.get_by_text("you selected in").wait_for()
    assert f"The {len(chosen)} images you selected in" in sentence.inner_text()
    assert "VAE latents" in sentence.inner_text()
    page.locator("#atlas-selection-gallery img").first.wait_for()
    assert page.locator("#atlas-selection-gallery img").count() == min(len(chosen), 48)
    _shot(page, "atlas-lasso-selection")
    page.get_by_role("button", name="Clear the selection").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.atlas-panel')].every(p => p.dataset.selection === '')"
    )
    assert all(p.evaluate(SELECTED_DRAWN) == 0 for p in panels.all())
    page.locator(".atlas-tool[data-mode=pan]").click()


def test_atlas_text_query_highlights(page):
    page.get_by_label("A sentence").fill("a photo of a cat")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_text("CLIP similarity to").wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.atlas-panel')].every(p => p.dataset.highlight.split(',').length === 8)"
    )
    _shot(page, "atlas-text-query")


def _panel_heights(page) -> list[float]:
    return page.locator(".atlas-panel").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().height)"
    )


@pytest.mark.slow
def test_atlas_panels_keep_their_height_while_idle(page):
    """An idle page must not grow: the panels measured twice, 20 s apart, are the same height
    (a resize feedback loop between the panels and their box would grow them ~15 px/s)."""
    page.locator(".atlas-panel[data-drawn]").first.wait_for()
    before = _panel_heights(page)
    page_before = page.evaluate("() => document.body.scrollHeight")
    page.wait_for_timeout(20_000)
    after = _panel_heights(page)
    assert before == after and all(h < 600 for h in after)
    assert page.evaluate("() => document.body.scrollHeight") == page_before


def test_every_tab_appears_once(page):
    """Clicking through the tabs never draws a tab twice (e.g. a last "About" tab drawn twice)."""
    for name in ("Semantic atlas", "VAE lab"):
        page.get_by_role("tab", name=name).first.click()
        page.wait_for_timeout(500)
        names = page.get_by_role("tab").all_inner_texts()
        assert len(names) == len(set(names)), names


@pytest.mark.slow
def test_saved_atlas_of_5000_points_opens_and_links_a_click(page, tmp_path_factory):
    """A 5,000-point saved atlas (synthetic: bench/synthetic_atlas.py) opens in the app with
    every point drawn in each of its three panels, titled with the count; hovering a point
    shows its thumbnail, and a click stars it in every panel with its six neighbours."""
    from bench.synthetic_atlas import LOCATE, write

    folder = write(5_000, tmp_path_factory.mktemp("atlas5k"))
    page.get_by_role("tab", name="Semantic atlas").click()
    page.get_by_text("pca", exact=True).click()  # the saved map: no switch to UMAP meanwhile
    page.get_by_text("A saved atlas folder").click()
    page.get_by_label("Folder written by `python -m explorer atlas`").fill(str(folder))
    page.get_by_role("button", name="Open the folder").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.atlas-panel[data-drawn=\"5000\"]')].filter("
        "p => p.textContent.includes('5,000 points')).length === 3",
        timeout=300_000,
    )
    assert "5,000 images" in page.locator("#atlas-status").inner_text()
    page.locator(".atlas-panel").nth(1).scroll_into_view_if_needed()
    where = page.evaluate(LOCATE, [1])
    hovered = _hover(page, where, 1)
    page.mouse.click(where["px"], where["py"])
    page.wait_for_function(
        "() => [...document.querySelectorAll('.atlas-panel')].every("
        "p => p.dataset.selected !== '' && p.dataset.neighbors.split(',').length === 6)",
        timeout=120_000,
    )
    selected = {p.get_attribute("data-selected") for p in page.locator(".atlas-panel").all()}
    assert selected == {hovered}  # the point under the mouse, the same image in all three panels
    # the star and the six neighbours are drawn over every panel
    assert page.locator(".atlas-panel .atlas-overlay .atlas-sel").count() == 3
    assert page.locator(".atlas-panel .atlas-overlay .atlas-nb").count() >= 15
    assert page.get_by_label("Image #").input_value() == selected.pop()
    _shot(page, "atlas-5000-selected")


def _hover(page, where: dict, panel: int) -> str:
    """Move onto the point at ``where`` like a user -> the set index the panel says is hovered,
    once its thumbnail is shown."""
    page.mouse.move(where["px"] - 25, where["py"] - 25)
    page.mouse.move(where["px"], where["py"], steps=6)
    page.wait_for_function(
        "() => { const t = document.querySelector('.atlas-tip'), i = t && t.querySelector('img');"
        " return t && t.style.display === 'block' && i.complete && i.naturalWidth > 0; }"
    )
    return page.locator(".atlas-panel").nth(panel).get_attribute("data-hover")


@pytest.mark.slow
def test_atlas_of_100000_points_draws_every_point_and_answers_a_click(page):
    """A 100,000-point atlas (synthetic, three spaces) in the panels' own page (atlas.js and
    scatter.js, fed the app's real payload and its real click update; bench/browser_scale.py):
    every point drawn in each panel, a hovered point's thumbnail shown, and a click answered
    with the point starred in every panel and its six neighbours in each, the ones the atlas
    computes."""
    from bench.browser_scale import open_page, serving
    from bench.synthetic_atlas import LOCATE, synthetic_atlas
    from explorer import atlas
    from tests.helpers import free_port

    n = 100_000
    a = synthetic_atlas(n)
    with serving(a, "pca", free_port()) as (url, _):
        pg = page.context.browser.new_page(
            viewport={"width": 1400, "height": 900}
        )  # one Playwright a process
        pg.set_default_timeout(120_000)
        open_page(pg, url)
        pg.wait_for_function(
            f"() => document.querySelectorAll('.atlas-panel[data-drawn=\"{n}\"]').length === 3"
        )
        assert pg.locator(".atlas-panel .atlas-count").all_inner_texts() == ["100,000 points"] * 3
        where = pg.evaluate(LOCATE, [1])
        hovered = _hover(pg, where, 1)  # (in a dense cloud another point may share the pixel)
        pg.mouse.click(where["px"], where["py"])
        pg.wait_for_function(
            "() => [...document.querySelectorAll('.atlas-panel')].every("
            "p => p.dataset.neighbors.split(',').filter(Boolean).length === 6)"
        )
        want = atlas.neighbours(a, int(hovered), 6)
        for panel in pg.locator(".atlas-panel").all():
            assert panel.get_attribute("data-selected") == hovered
            got = [int(i) for i in panel.get_attribute("data-neighbors").split(",")]
            assert got == [i for i, _ in want[panel.get_attribute("data-space")]]
        assert pg.locator(".atlas-panel .atlas-overlay .atlas-sel").count() == 3
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / "atlas-100000-page.png"))
        pg.close()


def test_offline_notice_is_one_line_once_a_vae_runs(page):
    """The tests' cache is empty, so the default VAEs are not downloaded, but the tiny test
    models run: the lab's notice says both in one line, with the command, and no big button."""
    page.get_by_role("tab", name="VAE lab").click()
    notice = page.locator("#offline-notice-lab-text").first
    notice.wait_for()
    text = notice.inner_text()
    assert "python -m explorer download" in text and "Usable now" in text
    assert notice.bounding_box()["height"] < 80  # one line, not the full notice
    assert not page.locator("#offline-notice-lab-open").first.is_visible()
    _shot(page, "lab-offline-notice-one-line")
