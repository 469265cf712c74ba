"""The atlas tab's words: the verdict a student reads, the status line, the search note."""

from __future__ import annotations

from ..atlas import MIN_PER_CLASS, Atlas, Verdict


def verdict_markdown(v: Verdict | None) -> str:
    """A :class:`~explorer.atlas.Verdict` -> the sentences under the panels (Markdown; "" for
    no verdict): the 5-NN accuracies, then the reading -- best space, a tie, no better than
    chance, or why the numbers cannot be read (one label, classes too small)."""
    if v is None:
        return ""
    parts = [f"**{space}** {acc:.0%}" for space, acc in v.knn5.items()]
    text = f"Leave-one-out 5-NN label accuracy: {', '.join(parts)} (chance {v.chance:.0%}). "
    if v.single_label:
        return text + "With a single label there is nothing to compare: use two classes or more."
    if v.small_classes:
        return text + (
            f"Too few images per class to read much into these numbers (the smallest class "
            f"has {v.smallest_class}): use at least {MIN_PER_CLASS} per class, better 10 or more."
        )
    if not v.above_chance:
        return text + "No space groups this set by its labels better than chance."
    if v.tied:
        return (
            text + f"{' and '.join(f'**{t}**' for t in v.tied)} group this set about equally well."
        )
    return text + f"**{v.best}** groups this set by its labels best."


def status_markdown(a: Atlas, shown: str, note: str = "", extra_note: str = "") -> str:
    """The line above the panels: the set's summary, its spaces, the map shown, the spaces that
    were left out and why."""
    failures = "".join(f"\n- **{ref}** left out: {msg}" for ref, msg in a.failures.items())
    return (
        f"**{a.images.summary()}** Spaces: {', '.join(s.title for s in a.spaces)}; "
        f"map: {shown.upper()}. {note} {extra_note}{failures}"
    )


def text_search_note(a: Atlas, text: str, top: list[tuple[int, float]]) -> str:
    """The note above the text-search results: the sentence and its best match."""
    return (
        f"CLIP similarity to “{text.strip()}”: best #{top[0][0]} ({a.labels[top[0][0]]}, "
        f"{top[0][1]:.3f}). Matches are circled in every panel."
    )
