"""The class handout: one self-contained HTML file (every step's figure, table, numbers,
question and answer; models, versions, date; the answer key), within its 15 MB cap, loading
nothing, printable one step per page, escaped, and read back as a record the app shows."""

from __future__ import annotations

import base64
import html
import io
import re

import numpy as np
import pytest
from PIL import Image

from explorer.core.errors import ExplorerError
from explorer.ui.lesson import handout
from explorer.ui.lesson import questions as qs
from explorer.ui.lesson import steps as st
from explorer.ui.lesson import views as lt

MODEL = "test-tiny"


@pytest.fixture(scope="module")
def ran() -> dict[int, handout.Ran]:
    out = {}
    for n in (2, 3, 4, 6):
        r = lt.run_step(n, MODEL)
        out[n] = handout.Ran(n, MODEL, "test", r, prediction="A. x", answer=qs.answer(n, r))
    return out


def _figure(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_the_handout_holds_every_step_its_numbers_and_answers(ran, tmp_path):
    path = handout.write(ran, MODEL, tmp_path / "class.html")
    text = path.read_text()
    assert path.stat().st_size <= handout.CAP_BYTES
    for n in lt.STEPS:  # every step on a page of its own, headed "Step N"
        assert re.search(rf'<section class="step" id="step-{n}"><h2>Step {n}\. ', text)
    assert "break-before: page" in text and "@media print" in text
    for n, r in ran.items():
        section = text.split(f'id="step-{n}"')[1].split("</section>")[0]
        assert f'<img id="fig-{n}" class="figure"' in section  # its figure (step 4: the plot)
        for value in r.result.table.astype(str).values.ravel():
            assert html.escape(value) in section  # every number of its table
        assert html.escape(qs.choice_label(n, r.answer.choice)) in section
    key = text.split('id="answer-key"')[1]
    for q in qs.QUESTIONS.values():  # the key: all questions, run or not
        assert html.escape(q.prompt) in key
    assert "(not run)" in key  # steps 1, 5 and 7 were not run here
    assert html.escape(MODEL) in text and "test</td>" in text  # the model and its version


def test_the_handout_loads_nothing(ran):
    text = handout.render(ran, MODEL)
    assert "default-src 'none'" in text  # the CSP forbids every fetch
    srcs = re.findall(r'\b(?:src|href)="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert "<link" not in text and not re.search(r"<script(?![^>]*application/json)", text)
    assert "url(" not in text and "@import" not in text


def test_it_reads_back_as_the_same_record(ran, tmp_path):
    path = handout.write(ran, MODEL, tmp_path / "class.html")
    record, figures = handout.read(path)
    want = handout.record_of(ran, MODEL, record["date"])
    for got, exp in zip(record["steps"], want["steps"], strict=True):
        for field in ("n", "title", "model", "version", "notice", "answer", "prediction"):
            assert (got.get(field) or None) == (exp.get(field) or None), (got["n"], field)
        if exp.get("table"):
            assert got["table"]["rows"] == [[str(v) for v in r] for r in exp["table"]["rows"]]
    for n, r in ran.items():
        assert _figure(figures[n]).size == handout.figure_of(r.result).size
    view = handout.reopened_html(record, figures)
    assert "read-only" in view and "Step 6. Perturbations" in view


def test_names_are_escaped_in_the_file_and_the_reopened_view(ran, tmp_path):
    evil = '<img src=x onerror="alert(1)">'
    r = ran[2]
    bad = {2: handout.Ran(2, evil, evil, r.result, prediction=evil, answer=r.answer)}
    path = handout.write(bad, evil, tmp_path / "evil.html")
    text = path.read_text()
    assert "<img src=x" not in text and html.escape(evil) in text
    record, figures = handout.read(path)
    assert record["lesson_model"] == evil
    view = handout.reopened_html(record, figures)
    assert "<img src=x" not in view and "<script" not in view


def test_a_hostile_file_is_refused_or_shown_inert(tmp_path):
    plain = tmp_path / "plain.html"
    plain.write_text("<html><body><script>alert(1)</script></body></html>")
    with pytest.raises(ExplorerError, match="not a class saved by this app"):
        handout.read(plain)
    big = tmp_path / "big.html"
    with big.open("wb") as fh:
        fh.truncate(handout.CAP_BYTES + 1)
    with pytest.raises(ExplorerError, match="at most 15 MB"):
        handout.read(big)
    # a record whose texts carry markup, and a figure that is no picture
    record = handout.record_of({}, "m")
    record["steps"][0].update(title="</h2><script>alert(1)</script>", ran=True)
    doc = handout.document(record, {1: "data:image/png;base64,AAAA"})
    forged = tmp_path / "forged.html"
    forged.write_text(doc)
    with pytest.raises(ExplorerError):
        handout.read(forged)  # the figure does not decode
    forged.write_text(handout.document(record, {}))
    got, _ = handout.read(forged)
    view = handout.reopened_html(got, {})
    assert "<script" not in view and "&lt;script&gt;" in view


def test_the_cap_shrinks_figures_then_refuses(ran, monkeypatch):
    noise = np.random.default_rng(0).integers(0, 256, (900, 1600, 3), np.uint8)
    big = st.StepResult(image=Image.fromarray(noise), table=ran[2].result.table, notice="x")
    steps = {2: handout.Ran(2, MODEL, "test", big, answer=qs.answer(2, big))}
    full = len(handout.document(handout.record_of(steps, MODEL), {2: handout.data_uri(
        big.image)}).encode())  # fmt: skip
    monkeypatch.setattr(handout, "CAP_BYTES", full // 3)
    text = handout.render(steps, MODEL)  # shrunk to fit
    assert len(text.encode()) <= full // 3 and "data:image/jpeg" in text
    monkeypatch.setattr(handout, "CAP_BYTES", 20_000)
    with pytest.raises(ExplorerError, match="cap: it was not written"):
        handout.render(steps, MODEL)


def test_markdown_is_rendered_after_escaping():
    assert handout.md_inline("**a** *b* `c` <d>") == (
        "<strong>a</strong> <em>b</em> <code>c</code> &lt;d&gt;"
    )
    assert handout.md_inline("2 * 3 * 4") == "2 * 3 * 4"


@pytest.mark.slow
def test_the_command_line_writes_every_step(tmp_path, capsys):
    from explorer import cli

    out = tmp_path / "lesson.html"
    assert cli.main(["lesson", "--out", str(out)]) == 0
    assert "7 of 7 steps" in capsys.readouterr().out
    record, figures = handout.read(out)
    runnable = [s for s in record["steps"] if s.get("question")]
    assert all(s["ran"] and s["answer"] and not s["error"] for s in runnable)
    assert set(figures) == set(lt.RUNNABLE) - {7}  # step 7 shows a table only
    names = [m["name"] for m in record["models"]]  # step 7's UNet space is listed too
    assert any(name.endswith("@t200") for name in names), names
    assert cli.main(["lesson", "--out", str(tmp_path / "x.txt")]) == 2
