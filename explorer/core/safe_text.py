"""User-supplied text (file, label and dataset names, ids typed into a box) made safe to show,
export and log: str in, str out (numbers stay numbers in :func:`csv_cell`).

* :func:`display_name`: one line for people: bidirectional controls (an RTL override reverses
  what follows it), other control and invisible format characters and runs of combining marks
  removed, whitespace collapsed, shortened with an ellipsis.
* :func:`escape_markdown`: literal text inside Gradio Markdown (outside code spans): every ASCII
  punctuation character becomes a numeric character reference, which CommonMark and marked
  render as that character and never read as markup: no links (``[x](y)``, autolinked
  ``http://`` / ``www.`` / ``a@b``), images, emphasis, headings, tables, HTML tags or ``$`` maths.
* :func:`markdown_text`: the same made safe with its punctuation kept readable (no HTML, link,
  image, maths or autolink; emphasis marks may remain): for status lines an API also reads.
* :func:`escape_html`: text inside HTML (elements and quoted attributes).
* :func:`csv_cell`: a spreadsheet cell that cannot start a formula (OWASP, CSV injection): text
  starting with ``= + - @``, a tab or a carriage return (after any spaces) gets a leading ``'``.
  Write the rows with ``csv.QUOTE_NONNUMERIC`` so that every text cell is quoted too (a cell
  cannot then be split at a locale's ``;`` separator into one that starts a formula).
* :func:`csv_bytes`: a whole CSV file written that way; :func:`csv_uncell` reads a cell back.
* :func:`display_names`: distinct labels -> distinct display names (a legend's classes).
* :func:`clip_for_log`: at most ``n`` characters of a request's text for a log line or an error,
  with control and bidirectional characters written as escapes (no forged log lines).

Every function reads a bounded prefix of a long string (a 20 MB name costs what 1 KB does).
"""

from __future__ import annotations

import csv
import html
import io
import numbers
import re
import unicodedata
from collections.abc import Iterable, Sequence

__all__ = [
    "clip_for_log",
    "csv_bytes",
    "csv_cell",
    "csv_uncell",
    "display_name",
    "display_names",
    "escape_html",
    "escape_markdown",
    "markdown_text",
]

ELLIPSIS = "…"
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_KEEP_FORMAT = frozenset("\u200c\u200d")  # ZWNJ, ZWJ: needed by Persian, Indic scripts, emoji
_SPACES = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")  # become one space
_MAX_MARKS = 4  # combining marks kept after one base character
_MD_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_MD_TABLE = {ord(c): f"&#{ord(c)};" for c in _MD_PUNCT}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def _drop(ch: str) -> bool:
    """A character never shown: bidi controls, C0/C1 controls, invisible format characters
    (not ZWNJ/ZWJ), lone surrogates, unassigned and private-use code points."""
    if ch in BIDI:
        return True
    cat = unicodedata.category(ch)
    return (cat == "Cf" and ch not in _KEEP_FORMAT) or cat in ("Cc", "Cs", "Co", "Cn")


def display_name(s: object, *, max_chars: int = 80) -> str:
    """Any value -> one clean line of at most ``max_chars`` characters (an ellipsis ends a
    shortened one); only the first ``8 * max_chars + 64`` characters are read."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    text = "" if s is None else str(s)
    window = 8 * max_chars + 64
    longer = len(text) > window
    out: list[str] = []
    marks = 0
    space = False
    for ch in text[:window]:
        if ch in _SPACES or ch == " " or unicodedata.category(ch) == "Zs":
            space = bool(out)
            continue
        if _drop(ch):
            continue
        if unicodedata.combining(ch):
            marks += 1
            if marks > _MAX_MARKS or not out:
                continue
        else:
            marks = 0
        if space:
            out.append(" ")
            space = False
        out.append(ch)
    if len(out) > max_chars or longer:
        return "".join(out[: max_chars - 1]).rstrip() + ELLIPSIS
    return "".join(out)


def escape_markdown(s: object) -> str:
    """Text -> Markdown that renders as exactly that text (one line: line breaks become spaces).
    For text outside code spans; shorten it first (:func:`display_name`) where it may be long."""
    text = "" if s is None else str(s)
    text = re.sub(r"[\r\n\u2028\u2029\x85]+", " ", text)
    return text.translate(_MD_TABLE)


_MD_MARKUP = {ord(c): f"&#{ord(c)};" for c in "&<>[]$\\"}
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(:)(?=//)|(?<=www)(\.)|(@)(?=[a-z0-9-]+\.)")


def markdown_text(s: object) -> str:
    """Text -> Markdown that shows it with its punctuation readable (``a_b (2).png`` stays as
    it is) but makes nothing of it: no HTML (``& < >``), no link or image (``[ ]``), no maths
    (``$``), no escapes (``\\``), no autolink (the ``:`` of ``http://``, the ``.`` of ``www.``,
    the ``@`` of an address), one line. Emphasis marks in a name may still emphasise; where
    even that matters, use :func:`escape_markdown`."""
    text = "" if s is None else str(s)
    text = re.sub(r"[\r\n\u2028\u2029\x85]+", " ", text).translate(_MD_MARKUP)
    return _AUTOLINK.sub(lambda m: f"&#{ord(m.group(0))};", text)


def escape_html(s: object) -> str:
    """Text -> HTML text or a quoted attribute value (``& < > " '`` escaped)."""
    return html.escape("" if s is None else str(s), quote=True)


def _needs_prefix(text: str) -> bool:
    head = text[:200].lstrip(" '")
    if len(head) <= 64 and _NUMBER.fullmatch(head):
        return False
    return head.startswith(_FORMULA)


def csv_cell(value: object) -> object:
    """A value for a CSV cell: numbers (and text that is just a decimal number) unchanged, None
    as "", any other text that a spreadsheet would read as a formula prefixed with ``'`` (so is
    text that already starts with quotes before one: :func:`csv_uncell` undoes it exactly)."""
    if value is None:
        return ""
    if isinstance(value, numbers.Number):
        return value
    text = str(value)
    return "'" + text if _needs_prefix(text) else text


def csv_uncell(text: str) -> str:
    """A text cell written by :func:`csv_cell` -> the text it was given."""
    return text[1:] if text.startswith("'") and _needs_prefix(text[1:]) else text


def _csv_field(value: object, float_format: str | None, nan: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:
        return nan
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        text = str(csv_cell(str(value)) if not isinstance(value, bool) else value)
        return '"' + text.replace('"', '""') + '"'
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return format(float(value), float_format) if float_format else repr(float(value))


def csv_bytes(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    float_format: str | None = None,
    nan: str = "",
) -> bytes:
    """A header and rows -> UTF-8 CSV: every text cell made safe (:func:`csv_cell`) and, below
    the header, quoted (no locale's ``;`` can split one into a formula); numbers bare (floats
    in ``float_format``, e.g. ``".6g"``, else their shortest repr), NaN as ``nan`` (default an
    empty cell, as pandas writes it)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([csv_cell(h) for h in header])  # names
    for row in rows:
        buf.write(",".join(_csv_field(v, float_format, nan) for v in row) + "\n")
    return buf.getvalue().encode("utf-8")


def display_names(values: Iterable[object], *, max_chars: int = 80) -> dict[str, str]:
    """Distinct values -> ``{value: its display name}`` (:func:`display_name`), no two values
    given the same name (a clash gets `` (2)``, `` (3)``... after its name)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for v in values:
        key = str(v)
        if key in out:
            continue
        name = display_name(key, max_chars=max_chars) or "(no name)"
        shown, k = name, 1
        while shown in taken:
            k += 1
            shown = f"{name} ({k})"
        taken.add(shown)
        out[key] = shown
    return out


def clip_for_log(s: object, n: int = 200) -> str:
    """At most ``n`` characters of ``s`` (and a note of how many more there were), with control,
    bidi and invisible characters written as ``\\x..`` / ``\\u....`` escapes."""
    if n < 1:
        raise ValueError("n must be at least 1")
    text = "" if s is None else str(s)
    head = text[:n]
    shown = "".join(
        (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        if ch in _SPACES or _drop(ch)
        else ch
        for ch in head
    )
    more = len(text) - len(head)
    return f"{shown}{ELLIPSIS}(+{more:,} characters)" if more else shown
