"""User-supplied text (file, label and dataset names, ids typed into a box) made safe to show,
export and log: str in, str out (numbers stay numbers in :func:`csv_cell`).

* :func:`display_name`: one line for people: bidirectional controls (an RTL override reverses
  what follows it), other control and invisible format characters and runs of combining marks
  removed, whitespace collapsed, shortened with an ellipsis.
* :func:`escape_markdown`: literal text inside Gradio Markdown (outside code spans): every ASCII
  punctuation character becomes a numeric character reference, which CommonMark and marked
  render as that character and never read as markup: no links (``[x](y)``, autolinked
  ``http://`` / ``www.`` / ``a@b``), images, emphasis, headings, tables, HTML tags or ``$`` maths.
* :func:`escape_html`: text inside HTML (elements and quoted attributes).
* :func:`csv_cell`: a spreadsheet cell that cannot start a formula (OWASP, CSV injection): text
  starting with ``= + - @``, a tab or a carriage return (after any spaces) gets a leading ``'``.
  Write the rows with ``csv.QUOTE_NONNUMERIC`` so that every text cell is quoted too (a cell
  cannot then be split at a locale's ``;`` separator into one that starts a formula).
* :func:`clip_for_log`: at most ``n`` characters of a request's text for a log line or an error,
  with control and bidirectional characters written as escapes (no forged log lines).

Every function reads a bounded prefix of a long string (a 20 MB name costs what 1 KB does).
"""

from __future__ import annotations

import html
import numbers
import re
import unicodedata

__all__ = ["clip_for_log", "csv_cell", "display_name", "escape_html", "escape_markdown"]

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


def escape_html(s: object) -> str:
    """Text -> HTML text or a quoted attribute value (``& < > " '`` escaped)."""
    return html.escape("" if s is None else str(s), quote=True)


def csv_cell(value: object) -> object:
    """A value for a CSV cell: numbers (and text that is just a decimal number) unchanged, None
    as "", any other text that a spreadsheet would read as a formula prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, numbers.Number):
        return value
    text = str(value)
    if len(text) <= 64 and _NUMBER.fullmatch(text):
        return text
    if text.lstrip(" ").startswith(_FORMULA):
        return "'" + text
    return text


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
