"""The atlas tab's UNet sweep panel in headless Chromium (Playwright), with the tiny test models:
the sweep of the teaching set drawn as heatmaps with its sentences, and the atlas reopened at a
cell. Screenshots go to artifacts/screenshots/ (as in tests/test_browser.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.atlas import MAX_SPACES
from tests.test_browser import ARGS, CHROMIUM, SHOTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def page(app_url):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it (apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 800})
        pg.set_default_timeout(180_000)
        pg.goto(app_url)
        pg.get_by_text("Latent Space Explorer").first.wait_for()
        yield pg
        browser.close()


def test_the_sweep_panel_draws_heatmaps_and_opens_a_cell(page):
    page.get_by_role("tab", name="Semantic atlas").click()
    page.get_by_role("button", name="Open the teaching set").click()
    page.locator(".atlas-panel[data-drawn]").nth(2).wait_for()
    panel = page.locator("#atlas-sweep")
    for t in ("50", "100", "400", "600", "800"):  # keep t = 0 and 200
        panel.get_by_label(t, exact=True).uncheck()
    seeds = page.locator("#atlas-sweep-seeds input[type=number]")
    seeds.fill("1")
    seeds.press("Enter")
    page.get_by_role("button", name="Run the UNet sweep on the open set").click()
    page.locator("#atlas-sweep-plot .heatmaplayer").first.wait_for()
    page.get_by_text("leaks the label by construction").first.wait_for()
    status = page.locator("#atlas-sweep-status").inner_text()
    assert "112 images × 2 timesteps × 1 noise draw × 3 prompts = 672 UNet passes" in status
    assert page.locator("#atlas-sweep-plot .heatmaplayer .hm").count() == 4  # 3 prompts + scale
    scale = page.locator("#atlas-sweep-plot").inner_text()
    assert "chance" in scale and "CLIP" in scale and "pixels" in scale
    page.locator("#atlas-sweep-plot").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "atlas-unet-sweep.png"))
    before = page.locator(".atlas-panel").count()  # the teaching set's spaces, controls included
    page.get_by_role("button", name="Open the atlas at this block and timestep").click()
    page.get_by_text("UNet panel at", exact=False).first.wait_for()
    after = min(before + 1, MAX_SPACES)  # the UNet cell joins the other spaces
    page.locator(".atlas-panel[data-drawn]").nth(after - 1).wait_for()
    assert page.locator(".atlas-panel").count() == after
    page.get_by_text("UNet panel at", exact=False).first.wait_for()
