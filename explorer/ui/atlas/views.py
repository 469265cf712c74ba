"""The atlas tab's words: the verdict a student reads, the status line, the search note."""

from __future__ import annotations

from collections.abc import Sequence

from explorer.atlas import (
    MIN_PER_CLASS,
    TIE,
    Atlas,
    Reopened,
    Verdict,
    near_chance,
    ranked_readings,
    unet_position,
)
from explorer.core.safe_text import display_name, markdown_text
from explorer.models.specs import DOWNLOAD_HINT
from explorer.ui.atlas.evidence import evidence_markdown


def _pct(x: float) -> str:
    return f"{x:.0%}"


READING_NAMES = {
    "source": "its own photo",
    "appearance": "its palette among other photos",
    "meaning": "its meaning among other photos",
}
"""How a grouped set's labellings read in the hierarchy (the teaching set's three)."""


def _reading_name(name: str, grouped: bool) -> str:
    if grouped and name in READING_NAMES:
        return READING_NAMES[name]
    return f"its {name}"


def _gap(a: float, b: float) -> str:
    """The sign between two consecutive scores of a hierarchy, highest first."""
    if a - b >= 0.25:
        return " ≫ "
    return " > " if a - b > TIE else " ≈ "


def hierarchy(v: Verdict, space: str, grouped: bool | None = None) -> str:
    """What ``space`` keeps of each labelling, in the order its 5-NN scores give, each with its
    chance level: ``its own photo **100%** (chance 6%) ≫ its palette among other photos
    **88%** (chance 14%) ≫ …`` (Markdown). ``grouped``: name the group-aware readings as
    such (default: where the verdict has a same-photo-counted row or a ``source`` labelling)."""
    if grouped is None:  # a same-photo-counted row, or a labelling that is the photo itself
        grouped = bool(v.counted) or "source" in v.readings
    ranked = ranked_readings(v, space)
    text = ""
    for j, (name, knn5, chance) in enumerate(ranked):
        if j:
            text += _gap(ranked[j - 1][1], knn5)
        flat = ": no better than chance" if near_chance(knn5, chance) else ""
        text += f"{_reading_name(name, grouped)} **{_pct(knn5)}** (chance {_pct(chance)}{flat})"
    return text


def _space_readings(v: Verdict, titles: dict[str, str], noun: str) -> list[str]:
    """One line per space: the hierarchy of its readings, and, where same-photo neighbours were
    left out, what counting them would have said."""
    lines = []
    for space in v.knn5:
        line = f"- **{titles.get(space, space)}**: {hierarchy(v, space)}"
        if space in v.counted:
            line += (
                f"; with each photo's own {noun} counted as its neighbours, {v.labeling} would "
                f"read {_pct(v.counted[space])}"
            )
        lines.append(line + ".")
    return lines


def verdict_markdown(
    v: Verdict | None,
    titles: dict[str, str] | None = None,
    missing: Sequence[str] = (),
    noun: str = "versions",
) -> str:
    """A :class:`~explorer.atlas.Verdict` -> the sentences under the panels (Markdown; "" for
    no verdict).

    With one labelling: the 5-NN accuracies, then the reading -- best space, a tie, no better
    than chance, or why the numbers cannot be read (one label, classes too small, one space).
    With several (the teaching set's meaning, appearance, source): one line per space saying how
    often its neighbours recover each labelling against chance, then the comparison on the main
    labelling. ``titles``: display names of the spaces; ``missing``: the families that could not
    be opened (e.g. CLIP offline), named with what they would add; ``noun``: what the set calls
    a photo's other versions.
    """
    if v is None:
        return ""
    titles = titles or {}
    if len(v.readings) > 1:
        text = (
            "How often a vote of an image's 5 nearest neighbours recovers each labelling, in the "
            "order the numbers give:\n\n" + "\n".join(_space_readings(v, titles, noun)) + "\n\n"
        )
    else:
        parts = [f"**{space}** {acc:.0%}" for space, acc in v.knn5.items()]
        text = f"Leave-one-out 5-NN label accuracy: {', '.join(parts)} (chance {v.chance:.0%}). "
    what = "its labels" if v.labeling == "label" else f"{v.labeling}"
    if v.single_label:
        text += "With a single label there is nothing to compare: use two classes or more."
    elif v.small_classes:
        text += (
            f"Too few images per class to read much into these numbers (the smallest class "
            f"has {v.smallest_class}): use at least {MIN_PER_CLASS} per class, better 10 or more."
        )
    elif v.single_space:
        text += "Only one space is open, so there is nothing to compare it with."
    elif not v.above_chance:
        text += f"No space groups this set by {what} clearly better than chance."
    elif v.tied:
        by = "" if v.labeling == "label" else f" by {what}"
        text += f"{' and '.join(f'**{t}**' for t in v.tied)} group this set{by} about equally well."
    else:
        text += f"**{v.best}** groups this set by {what} best."
    text += unet_markdown(v, titles)
    if missing:
        names = " and ".join(FAMILY_NAMES.get(m, m) for m in missing)
        text += (
            f"\n\n{names} could not be opened here, so the comparison with a space trained for "
            "meaning is missing: they usually group photos by what they show where the VAE "
            "follows colour and layout. Run `python -m explorer download` once with internet "
            "(or tick them when the Hub is reachable) to add them."
        )
    return text


FAMILY_NAMES = {
    "vae": "The VAE",
    "clip": "CLIP",
    "dino": "DINOv2",
    "vit": "ViT",
    "unet": "The UNet bottleneck",
}
_UNET_READINGS = {
    "between": "more than the VAE latent and less than {best}: denoising adds some meaning to "
    "the latent, short of a model trained for it",
    "like-vae": "about as often as the VAE latent and less than {best}: here the denoiser's "
    "bottleneck adds little meaning to the latent",
    "below-vae": "less often than the VAE latent and {best}",
    "like-semantic": "about as often as {best} or more",
}


def unet_markdown(v: Verdict, titles: dict[str, str] | None = None) -> str:
    """Where the UNet bottleneck falls between the VAE and the meaning-trained spaces, read from
    the 5-NN scores (a paragraph starting with two newlines; "" when there is nothing to read)."""
    found = unet_position(v)
    if found is None:
        return ""
    position, scores = found
    titles = titles or {}
    best = next(k for k in scores if k not in ("unet", "vae"))
    name = titles.get(best, best)
    what = "label" if v.labeling == "label" else v.labeling
    return (
        f"\n\n**Where the semantics are:** a 5-neighbour vote in the UNet bottleneck gets the "
        f"{what} right for {_pct(scores['unet'])} of images — "
        + _UNET_READINGS[position].format(best=f"{name} ({_pct(scores[best])})")
        + f" (VAE latent {_pct(scores['vae'])})."
    )


GROUP_NOUNS = {"teaching": "recolourings"}
"""What a set calls the other images of one source photo (default: versions)."""


def group_noun(set_name: str) -> str:
    return GROUP_NOUNS.get(set_name, "versions")


def neighbour_caption(
    title: str,
    *,
    k: int,
    same: int | None,
    label_name: str,
    group_size: int | None,
    own: int | None,
    own_group: bool,
    clicked: bool,
    noun: str = "versions",
) -> str:
    """A neighbour gallery's caption: what the list is and what it says.

    ``k`` images listed, ``same`` of them sharing the clicked image's ``label_name`` label (None
    for an outside query), ``group_size`` images in the selection's own group (source photo;
    None without one), ``own`` of the listed images from that group, ``own_group``: whether the
    group was kept in the list (else it was left out, as the metrics leave it out)."""
    label = "label" if label_name == "label" else label_name
    shared = f"{same}/{k} share its {label}" if same is not None else ""
    if group_size is None:  # no groups: the plain list
        what = f"{k} nearest" if clicked else f"{k} best matches"
        return f"{title} — {what}" + (f": {shared}" if shared else "")
    others = group_size - 1 if clicked else group_size
    whose = f"its own {others} {noun}" if clicked else f"the {others} {noun} of this photo"
    if not own_group:
        what = f"{k} nearest other photos" if clicked else f"{k} best matches among other photos"
        return f"{title} — {what}; {whose} left out" + (f" · {shared}" if shared else "")
    what = f"{k} nearest" if clicked else f"{k} best matches"
    text = f"{title} — {what} with {whose} counted: {own} of the {k} are that same photo"
    if shared:
        text += f", so {shared}"
    return text + (
        " — near-duplicates fill the list and inflate the count (the metrics leave them out)"
        if own
        else ""
    )


def markdown_html(text: str) -> str:
    """Markdown (the verdict) -> HTML for the exported page; raw HTML in it is escaped."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).render(text)


def export_verdict(a: Atlas, method: str) -> str:
    """The verdict shown under the app's panels, as the exported page's HTML."""
    from explorer import atlas as atlas_mod

    table = atlas_mod.metrics_table(a, method)
    v = atlas_mod.verdict(table, a.labels)
    titles = {s.key: s.title.split(" · ")[0] for s in a.spaces}
    opened = {s.family for s in a.spaces}
    missing = [f for f in dict.fromkeys(r.split(":", 1)[0] for r in a.failures) if f not in opened]
    md = verdict_markdown(v, titles, missing, group_noun(a.images.name))
    if md:
        md += evidence_markdown(a, table, titles, v)
    return markdown_html(md) if md else ""


def status_markdown(a: Atlas, shown: str, note: str = "", extra_note: str = "") -> str:
    """The line above the panels: the set's summary, its spaces, the map shown, the spaces that
    were left out and why."""
    hint = DOWNLOAD_HINT  # said once, after the spaces it applies to
    failures = "".join(
        f"\n- **{markdown_text(ref)}** left out: {msg.replace(hint, '').strip()}"
        for ref, msg in a.failures.items()
    )
    if any(hint in m for m in a.failures.values()):
        failures += f"\n\n{hint}"
    summary = markdown_text(a.images.summary())  # file and class names are the visitor's
    approx = approximate_note(a)
    return (
        f"**{summary}** Spaces: {', '.join(s.title for s in a.spaces)}; "
        f"map: {shown.upper()}. {note} {extra_note}{' ' + approx if approx else ''}{failures}"
    )


def approximate_note(a: Atlas) -> str:
    """Where the atlas's neighbour lists are approximate (a large set): which index, and their
    recall@10 measured against exact lists; '' where they are exact."""
    found = [a.neighbour_recall[s.key] for s in a.spaces if s.key in a.neighbour_recall]
    if not found:
        return ""
    low, high = min(r for r, _ in found), max(r for r, _ in found)
    value = f"{low:.3f}" if round(low, 3) == round(high, 3) else f"{low:.3f}–{high:.3f}"
    checked = max(c for _, c in found)
    return (
        f"Neighbours from an approximate index (pynndescent), recall@10 {value} measured "
        f"against exact on {checked:,} points."
    )


def text_search_note(a: Atlas, text: str, top: list[tuple[int, float]]) -> str:
    """The note above the text-search results: the sentence and its best match."""
    said = markdown_text(display_name(text.strip(), max_chars=120))
    label = markdown_text(display_name(a.labels[top[0][0]]))
    return (
        f"CLIP similarity to “{said}”: best #{top[0][0]} ({label}, "
        f"{top[0][1]:.3f}). Matches are circled in every panel."
    )


_DERIVED_WORDS = {
    "metrics.csv": "the metrics",
    "overlap.csv": "the overlap table",
    "neighbours.npz": "the neighbour lists",
}


def _and(words: list[str]) -> str:
    return (
        ", ".join(words[:-1]) + (" and " if len(words) > 1 else "") + (words[-1] if words else "")
    )


def reopened_note(r: Reopened | None) -> str:
    """The note on the status line of an atlas reopened from a folder: what was read as saved
    (checked by content hash) and what was recomputed or re-checked, and why."""
    if r is None:
        return "(reopened from disk)"
    what = _and([_DERIVED_WORDS.get(name, name) for name in r.recomputed])
    n = r.thumbs_checked
    thumbs = f"{n:,} thumbnail{'s' * (n != 1)}"
    if not r.manifest:
        text = "(reopened from disk; the folder has no manifest of content hashes"
        text += f", so {what} were recomputed" if what else ""
        return text + (f" and {thumbs} decoded to check them" if n else "") + ")"
    parts = []
    if r.changed:
        it = "it was" if len(r.changed) == 1 else "they were"
        parts.append(f"{_and(r.changed)} changed since {it} saved, so {what} were recomputed")
    elif what:
        its = "its saved hash" if len(r.recomputed) == 1 else "their saved hashes"
        parts.append(f"{_and(r.recomputed)} did not match {its}, so {what} were recomputed")
    if n:
        parts.append(
            f"{thumbs} did not match the saved hashes and {'was' if n == 1 else 'were'} checked"
        )
    if not parts:
        return "(reopened from disk: metrics, neighbours and thumbnails as saved, checked by content hash)"
    return "(reopened from disk; " + "; ".join(parts) + ")"
