"""The teacher's kit in a real browser (headless Chromium): the presenter view at 1920×1080
(large type, one step per screen, Previous / Next, nothing else on the page), a step's
question answered by its result, a saved class printed to PDF one step per page, and an
atlas link opening at its point. Screenshots go to artifacts/screenshots/ (and to
``EXPLORER_SHOTS`` if set)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from explorer.ui.lesson import handout
from explorer.ui.lesson import presenter as pres
from tests.test_browser import ARGS, CHROMIUM, SHOTS

pytestmark = pytest.mark.browser

SMALLEST = """() => {
  const shown = e => e && e.offsetParent !== null;
  let min = 1e9, where = '';
  for (const el of document.querySelectorAll('#presenter *')) {
    if (!shown(el)) continue;
    for (const n of el.childNodes) if (n.nodeType === 3 && n.textContent.trim()) {
      const px = parseFloat(getComputedStyle(el).fontSize);
      if (px < min) { min = px; where = n.textContent.trim().slice(0, 60); }
    }
  }
  return [min, where]; }"""


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it (apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _shot(page, name: str, full: bool = False) -> None:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    if os.environ.get("EXPLORER_SHOTS"):
        shutil.copy(path, Path(os.environ["EXPLORER_SHOTS"]) / path.name)


def test_presenter_view_one_step_per_screen_in_large_type(browser, app_url):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.set_default_timeout(180_000)
    page.goto(app_url + "?present=1&step=6")
    screen = page.locator("#presenter-step-6")
    screen.wait_for(state="visible")
    assert page.get_by_role("tablist").count() == 0  # no tabs, no notices, no About
    assert page.locator(".offline-notice").count() == 0 and page.locator("#about").count() == 0
    assert page.locator(".presenter-step:visible").count() == 1
    width = page.locator("#presenter").bounding_box()["width"]
    assert width >= 1700  # the whole projector width, not the app's 1500 px column
    _shot(page, "presenter-1920-step6-question")
    screen.get_by_text("B. less").click()
    screen.get_by_role("button", name="Perturb the astronaut").click()
    answer = screen.get_by_text("The answer, from this run")
    answer.wait_for()
    text = screen.locator(".prose.presenter-notice").inner_text()
    assert "the numbers support" in text and "The class predicted B. less" in text
    smallest, where = page.evaluate(SMALLEST)
    assert smallest >= min(pres.FONT_PX.values()), where
    title = page.locator("#presenter-step-6 .presenter-title h2")
    assert float(title.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 60
    img = screen.locator(".presenter-result img").first
    assert img.bounding_box()["height"] >= 0.4 * 1080  # the result fills the screen
    _shot(page, "presenter-1920-step6-result")
    _shot(page, "presenter-1920-step6-result-full", full=True)
    page.locator("#presenter-next").click()
    page.locator("#presenter-step-7").wait_for(state="visible")
    assert page.locator("#presenter-where").inner_text().startswith("Step 7 of 8")
    page.locator("#presenter-next").click()
    page.locator("#presenter-step-8").wait_for(state="visible")
    _shot(page, "presenter-1920-step8")
    page.locator("#presenter-leave").click()
    page.get_by_role("tab", name="Start here").wait_for()
    page.close()


def test_a_saved_class_prints_one_step_per_page(browser, app_url, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)
    page.goto(app_url + "?step=2")  # the link opens step 2
    page.locator("#lesson-step-2").get_by_text("C. 20× to 100×").click()
    page.locator("#lesson-step-2").get_by_role("button", name="Encode the astronaut").click()
    page.locator("#lesson-note-2").get_by_text("The answer, from this run").wait_for()
    page.get_by_text("Save this class, or reopen one").click()
    with page.expect_download() as got:
        page.locator("#lesson-save-btn").click()
        page.locator("#lesson-save-note").get_by_text("within the 15 MB cap").wait_for()
        page.locator("#lesson-save a[download]").first.click()
    saved = tmp_path / "class.html"
    got.value.save_as(saved)
    _shot(page, "lesson-tab-saved", full=True)
    record, _ = handout.read(saved)
    assert [s["n"] for s in record["steps"] if s["ran"]] == [2]
    # print it as a teacher would, and read the pages back
    doc = browser.new_page()
    fetched = []
    doc.on("request", lambda r: fetched.append(r.url))
    doc.goto(saved.as_uri())
    pdf = tmp_path / "class.pdf"
    doc.pdf(path=str(pdf), format="A4", print_background=True)
    assert fetched == [saved.as_uri()]  # nothing else was loaded
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed: pages not read")
    pages = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout.split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) == 1 + 8 + 1  # the cover, one page per step, the answer key
    for n in range(1, 9):
        assert pages[n].lstrip().startswith(f"Step {n}."), pages[n][:80]
    assert "Answer key" in pages[-1] and "C. 20× to 100×" in pages[-1]
    page.close()
    doc.close()


def test_an_atlas_link_opens_the_point(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)
    page.goto(app_url + "?tab=atlas&set=bundled&colour=appearance&point=12")
    page.locator(".atlas-panel[data-drawn]").first.wait_for()
    page.locator(".atlas-gallery").first.wait_for(state="visible")
    number = page.get_by_label("Image #")
    page.wait_for_function("el => el.value === '12'", arg=number.element_handle())
    assert "appearance" in page.locator("#atlas-color-by input").input_value()
    _shot(page, "atlas-link-point-12", full=True)
    page.close()
