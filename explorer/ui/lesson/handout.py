"""The handout: one self-contained HTML file of a class (every step's figure, table, numbers,
question and answer, the models and their versions, the date, and the answer key), and the
way back: :func:`read` turns such a file into a record the app shows read-only.

The file loads nothing: figures are PNG (or JPEG) data URIs, the style is inline, there is no
script to run (the record rides along as inert JSON), and a Content-Security-Policy forbids
any fetch. It prints one step per page, each headed "Step N". It stays within :data:`CAP_BYTES`
(15 MB): figures are re-encoded and shrunk until it fits, else it is refused with a sentence.
Every name and sentence is escaped wherever it is written. No gradio here.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from PIL import Image

import explorer
from explorer.core import files
from explorer.core.errors import ExplorerError
from explorer.images import chart
from explorer.ui.lesson import questions as qs
from explorer.ui.lesson import views as lt
from explorer.ui.lesson.steps import StepResult

CAP_BYTES = 15 * 1024 * 1024  # the handout's size cap (a file over it is never written or read)
FORMAT = "latent-explorer-class"
RECORD_ID = "explorer-class-record"
MAX_FIGURE_SIDE = 4096
PLAYGROUND = "the playground's AE and VAE"


@dataclass
class Ran:
    """One step as the class saw it: the model it ran on (``""`` for step 1, which trains the
    playground's digit models), its weights' version, its result (None if it failed, then
    ``error`` says why), the class's prediction and this run's answer."""

    n: int
    model: str
    version: str
    result: StepResult | None = None
    error: str = ""
    prediction: str | None = None
    answer: qs.Answer | None = None
    at: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))


# --------------------------------------------------------------------------- figures


def figure_of(result: StepResult) -> Image.Image | None:
    """A step result's figure as a picture: its image, else its plot drawn statically."""
    if result.image is not None:
        return result.image.convert("RGB")
    if result.plot is not None:
        return chart.figure_image(result.plot)
    return None


def data_uri(image: Image.Image, fmt: str = "png", scale: float = 1.0) -> str:
    """A picture -> a ``data:image/png|jpeg;base64,…`` URI (resized by ``scale``)."""
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(buf, "JPEG", quality=85)
    else:
        image.save(buf, "PNG", optimize=True)
    return f"data:image/{fmt};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


# --------------------------------------------------------------------------- the record


def _table(result: StepResult | None) -> dict | None:
    if result is None or result.table is None:
        return None
    t = result.table
    rows = [[v if isinstance(v, int | float | str) else str(v) for v in r] for r in
            t.astype(object).values.tolist()]  # fmt: skip
    return {"columns": [str(c) for c in t.columns], "rows": rows}


def _step_entry(n: int, ran: Ran | None) -> dict:
    step = lt.STEPS[n]
    entry = {"n": n, "title": step.title, "text": step.text, "ran": ran is not None}
    if n in qs.QUESTIONS:
        q = qs.QUESTIONS[n]
        entry.update(question=q.prompt, choices=q.labels())
    if ran is None:
        return entry
    entry.update(
        model=ran.model or PLAYGROUND,
        version=ran.version,
        at=ran.at,
        error=ran.error,
        notice=ran.result.notice if ran.result is not None else "",
        table=_table(ran.result),
        prediction=ran.prediction or None,
        also=dict(ran.result.also) if ran.result is not None else {},
    )
    if ran.answer is not None:
        entry.update(answer=qs.choice_label(n, ran.answer.choice), evidence=ran.answer.evidence)
    return entry


def record_of(steps: dict[int, Ran], lesson_model: str, date: str | None = None) -> dict:
    """The class as plain JSON-able data: every step of the lesson (run or not), the models
    and their versions, the date."""
    models = {}
    for ran in steps.values():
        models.setdefault(ran.model or PLAYGROUND, ran.version)
        for name, version in (ran.result.also if ran.result is not None else {}).items():
            models.setdefault(name, version)
    return {
        "format": FORMAT,
        "version": 1,
        "app": explorer.__version__,
        "date": date or datetime.now().isoformat(timespec="seconds"),
        "lesson_model": lesson_model,
        "models": [{"name": k, "version": v} for k, v in models.items()],
        "steps": [_step_entry(n, steps.get(n)) for n in lt.STEPS],
    }


# --------------------------------------------------------------------------- HTML

CSS = """
.class-record {font: 16px/1.45 system-ui, sans-serif; color: #111; max-width: 1100px;
  margin: 0 auto; padding: 0 16px}
.class-record h1 {font-size: 28px; margin: 16px 0 4px}
.class-record h2 {font-size: 24px; margin: 24px 0 8px; border-bottom: 2px solid #333}
.class-record .meta td, .class-record .meta th {padding: 2px 10px 2px 0; text-align: left}
.class-record img.figure {max-width: 100%; height: auto; display: block; margin: 8px 0;
  border: 1px solid #ddd}
.class-record table.numbers {border-collapse: collapse; margin: 8px 0; font-size: 14px}
.class-record table.numbers td, .class-record table.numbers th {border: 1px solid #bbb;
  padding: 3px 8px; text-align: left}
.class-record .question {font-weight: 600; margin-top: 10px}
.class-record .notice, .class-record .answer {background: #f4f6fa; border-left: 4px solid #4c78a8;
  padding: 6px 10px; margin: 8px 0}
.class-record .failed {background: #fdf0ee; border-left: 4px solid #c0392b; padding: 6px 10px}
.class-record .muted {color: #555}
@media print {
  @page {size: A4; margin: 12mm}
  .class-record {max-width: none; padding: 0; font-size: 10pt; line-height: 1.3}
  .class-record h1 {font-size: 18pt}
  .class-record h2 {font-size: 15pt; margin-top: 0}
  .class-record section.step, .class-record section.key {break-before: page;
    page-break-before: always}
  .class-record table, .class-record img.figure {break-inside: avoid}
  .class-record table.numbers {font-size: 8.5pt}
  .class-record img.figure {max-height: 75mm; max-width: 100%; width: auto}
  .class-record .notice, .class-record .answer {padding: 3px 8px; margin: 5px 0}
  .class-record ul.choices {margin: 2px 0}
}
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def md_inline(text: str) -> str:
    """A line of the app's markdown (``**bold**``, ``*italic*``, ``` `code` ```) -> HTML, every
    character of ``text`` escaped first."""
    s = html.escape(text or "", quote=True)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", s)
    return s


def _paragraphs(text: str) -> str:
    parts = [p.strip() for p in (text or "").split("\n\n") if p.strip()]
    return "".join(f"<p>{md_inline(p)}</p>" for p in parts)


def _numbers_table(table: dict | None) -> str:
    if not table:
        return ""
    e = html.escape
    head = "".join(f"<th>{e(str(c))}</th>" for c in table["columns"])
    body = "".join(
        "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in table["rows"]
    )
    return f'<table class="numbers"><tr>{head}</tr>{body}</table>'


def _step_html(s: dict, figure: str | None) -> str:
    e = html.escape
    n = s["n"]
    out = [f'<section class="step" id="step-{n}"><h2>Step {n}. {e(s["title"])}</h2>']
    out.append(f"<p>{md_inline(s['text'])}</p>")
    if s.get("question"):
        out.append(f'<p class="question">Predict: {e(s["question"])}</p><ul class="choices">')
        out += [f"<li>{e(c)}</li>" for c in s.get("choices", [])]
        out.append("</ul>")
    if not s.get("ran"):
        note = "text only" if not s.get("question") else "not run in this class"
        out.append(f'<p class="muted">({note})</p></section>')
        return "".join(out)
    also = "".join(
        f", with <strong>{e(k)}</strong> (version {e(v)})" for k, v in s.get("also", {}).items()
    )
    out.append(
        f'<p class="muted">Ran on <strong>{e(s.get("model", ""))}</strong> '
        f"(version {e(s.get('version', ''))}){also} at {e(s.get('at', ''))}.</p>"
    )
    if s.get("error"):
        out.append(f'<p class="failed">Not done: {md_inline(s["error"])}</p></section>')
        return "".join(out)
    if figure:
        out.append(f'<img id="fig-{n}" class="figure" alt="Step {n} result" src="{e(figure)}">')
    out.append(_numbers_table(s.get("table")))
    out.append(f'<div class="notice">{_paragraphs(s.get("notice", ""))}</div>')
    if s.get("answer"):
        pred = s.get("prediction")
        guess = f" The class predicted <em>{e(pred)}</em>." if pred else ""
        out.append(
            f'<p class="answer"><strong>Answer from this run:</strong> {e(s["answer"])} '
            f"({md_inline(s.get('evidence', ''))}).{guess}</p>"
        )
    out.append("</section>")
    return "".join(out)


def _key_html(record: dict) -> str:
    e = html.escape
    rows = []
    for s in record["steps"]:
        if not s.get("question"):
            continue
        got = s.get("answer") or ("(failed)" if s.get("error") else "(not run)")
        rows.append(
            f"<tr><td>{s['n']}</td><td>{e(s['question'])}</td><td>"
            + "<br>".join(e(c) for c in s.get("choices", []))
            + f"</td><td>{e(s.get('prediction') or '')}</td><td><strong>{e(got)}</strong>"
            + f"<br>{md_inline(s.get('evidence', ''))}</td></tr>"
        )
    return (
        '<section class="key" id="answer-key"><h2>Answer key</h2><p>Every question and the '
        "answer this run's numbers gave (another model can answer differently: each answer is "
        "read from the numbers, not written in advance).</p>"
        '<table class="numbers"><tr><th>Step</th><th>Question</th><th>Choices</th>'
        "<th>Class predicted</th><th>This run's answer</th></tr>"
        + "".join(rows)
        + "</table></section>"
    )


def body_html(record: dict, figures: dict[int, str]) -> str:
    """The record as the handout's body (a ``div.class-record``), also what the app shows when
    a saved class is reopened. ``figures``: step -> its data URI."""
    e = html.escape
    models = "".join(
        f"<tr><td>{e(m['name'])}</td><td>{e(m['version'])}</td></tr>" for m in record["models"]
    )
    ran = sum(1 for s in record["steps"] if s.get("ran"))
    head = (
        '<div class="class-record"><header><h1>Latent Space Explorer: a class on what a VAE '
        "latent keeps</h1>"
        f'<table class="meta"><tr><th>Date</th><td>{e(record["date"])}</td></tr>'
        f"<tr><th>App</th><td>latent-space-explorer {e(record['app'])}</td></tr>"
        f"<tr><th>Lesson model</th><td>{e(record['lesson_model'])}</td></tr>"
        f"<tr><th>Steps run</th><td>{ran} of {len(record['steps'])}</td></tr></table>"
        "<h3>Models and versions</h3>"
        f'<table class="numbers"><tr><th>model</th><th>version</th></tr>{models}</table>'
        "</header>"
    )
    steps = "".join(_step_html(s, figures.get(s["n"])) for s in record["steps"])
    return head + steps + _key_html(record) + "</div>"


def document(record: dict, figures: dict[int, str]) -> str:
    """The whole handout file (HTML)."""
    blob = json.dumps(record, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")
    title = html.escape(f"Latent Space Explorer class, {record['date']}")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head><body>"
        + body_html(record, figures)
        + f'<script type="application/json" id="{RECORD_ID}">{blob}</script></body></html>'
    )


def render(steps: dict[int, Ran], lesson_model: str, date: str | None = None) -> str:
    """The handout of ``steps`` (step -> :class:`Ran`) within :data:`CAP_BYTES`: figures as PNG,
    else JPEG, then smaller, until the file fits; refused with a sentence if it cannot."""
    record = record_of(steps, lesson_model, date)
    pictures = {
        n: figure_of(r.result) for n, r in steps.items() if r.result is not None and not r.error
    }
    pictures = {n: p for n, p in pictures.items() if p is not None}
    for fmt, scale in (("png", 1.0), ("jpeg", 1.0), ("jpeg", 0.7), ("jpeg", 0.5), ("jpeg", 0.3)):
        figures = {n: data_uri(p, fmt, scale) for n, p in pictures.items()}
        text = document(record, figures)
        if len(text.encode("utf-8")) <= CAP_BYTES:
            return text
    raise ExplorerError(
        f"This class's handout would be {len(text.encode()) / 2**20:.1f} MB even with its figures "
        f"shrunk, over the {CAP_BYTES / 2**20:.0f} MB cap: it was not written."
    )


def write(steps: dict[int, Ran], lesson_model: str, path: str | Path | None = None) -> Path:
    """:func:`render` written to ``path`` (default: a fresh file among the app's exports)."""
    text = render(steps, lesson_model)
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M")
    out = Path(path) if path else files.tmp_path(f"class-{stamp}.html", area="exports")
    try:
        files.atomic_write(out, text.encode("utf-8"))
    except OSError as exc:
        raise ExplorerError(f"Cannot write {out}: {exc}. Check the path.") from exc
    return out


# --------------------------------------------------------------------------- reading back

_FIG = re.compile(
    r'<img id="fig-(\d)" class="figure" alt="[^"<>]*" '
    r'src="(data:image/(?:png|jpeg);base64,[A-Za-z0-9+/=]+)">'
)
_BLOB = re.compile(
    rf'<script type="application/json" id="{RECORD_ID}">([^<]*)</script>\s*</body>\s*</html>\s*$'
)


def _str(v, limit: int = 20_000) -> str:
    if v is None:
        return ""
    if not isinstance(v, str | int | float | bool):
        raise ValueError("not text")
    return str(v)[:limit]


def _clean_step(s: dict) -> dict:
    if not isinstance(s, dict) or not isinstance(s.get("n"), int) or s["n"] not in lt.STEPS:
        raise ValueError("a step without a number")
    out = {k: _str(s.get(k)) for k in ("title", "text", "question", "model", "version", "at")}
    out.update({k: _str(s.get(k)) for k in ("error", "notice", "answer", "evidence")})
    out.update(n=s["n"], ran=bool(s.get("ran")), prediction=_str(s.get("prediction")) or None)
    out["choices"] = [_str(c, 500) for c in (s.get("choices") or [])][:8]
    also = s.get("also") if isinstance(s.get("also"), dict) else {}
    out["also"] = {_str(k, 300): _str(v, 300) for k, v in list(also.items())[:8]}
    t = s.get("table")
    if (
        isinstance(t, dict)
        and isinstance(t.get("columns"), list)
        and isinstance(t.get("rows"), list)
    ):
        cols = [_str(c, 200) for c in t["columns"]][:20]
        rows = [
            [_str(v, 500) for v in r][: len(cols)] for r in t["rows"][:200] if isinstance(r, list)
        ]
        out["table"] = {"columns": cols, "rows": rows}
    return out


def _check_figure(uri: str) -> str:
    data = base64.b64decode(uri.split(",", 1)[1], validate=True)
    with Image.open(io.BytesIO(data)) as im:
        if max(im.size) > MAX_FIGURE_SIDE:
            raise ValueError("figure too large")
        im.verify()
    return uri


def read(path: str | Path) -> tuple[dict, dict[int, str]]:
    """A handout file -> (its record, step -> figure data URI), every field checked and cut to
    size (the page built from it escapes everything again). Anything that is not a handout
    within :data:`CAP_BYTES` is refused with a sentence."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ExplorerError(
            "The saved class could not be read: upload the .html file again."
        ) from exc
    if size > CAP_BYTES:
        raise ExplorerError(
            f"This file is {size / 2**20:.1f} MB; a saved class is at most "
            f"{CAP_BYTES / 2**20:.0f} MB. Upload a file written by *Save this class*."
        )
    refused = ExplorerError(
        "This is not a class saved by this app (a .html file written by *Save this class* or "
        "`python -m explorer lesson --out`), or it was changed since."
    )
    try:
        text = p.read_bytes().decode("utf-8")
        found = _BLOB.search(text)
        if found is None:
            raise ValueError("no record")
        raw = json.loads(found.group(1))
        if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("version") != 1:
            raise ValueError("not a record")
        record = {k: _str(raw.get(k), 200) for k in ("app", "date", "lesson_model")}
        record["format"], record["version"] = FORMAT, 1
        models = raw.get("models") if isinstance(raw.get("models"), list) else []
        record["models"] = [
            {"name": _str(m.get("name"), 300), "version": _str(m.get("version"), 300)}
            for m in models[:20]
            if isinstance(m, dict)
        ]
        steps = raw.get("steps") if isinstance(raw.get("steps"), list) else []
        record["steps"] = [_clean_step(s) for s in steps[: len(lt.STEPS)]]
        figures = {int(n): _check_figure(uri) for n, uri in _FIG.findall(text)}
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, OSError, binascii.Error) as exc:
        raise refused from exc
    except Image.DecompressionBombError as exc:
        raise refused from exc
    return record, figures


def reopened_html(record: dict, figures: dict[int, str]) -> str:
    """What the app shows for a reopened class: a read-only note, then the handout's body with
    its style scoped to it (no print rules needed)."""
    note = (
        '<p class="muted"><strong>A saved class, read-only</strong>: what was on screen when it '
        "was saved; press the steps above to run them again.</p>"
    )
    style = CSS.split("@media print")[0]
    return f"<style>{style}</style>" + body_html(record, figures).replace(
        '<div class="class-record">', '<div class="class-record">' + note, 1
    )
