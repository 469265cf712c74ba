"""The atlas tab's words: the verdict a student reads, the status line, the search note."""

from __future__ import annotations

from collections.abc import Sequence

from explorer.atlas import MIN_PER_CLASS, Atlas, Verdict, unet_position
from explorer.core.safe_text import display_name, markdown_text


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _space_readings(v: Verdict, titles: dict[str, str]) -> list[str]:
    """One line per space: how often a 5-neighbour vote recovers each labelling, against chance
    (and, where same-photo neighbours were left out, what counting them would have said)."""
    lines = []
    for space in v.knn5:
        parts = []
        for name, per_space in v.readings.items():
            if space in per_space:
                knn5, chance = per_space[space]
                parts.append(f"the *{name}* of {_pct(knn5)} of images (chance {_pct(chance)})")
        line = f"- **{titles.get(space, space)}**: a 5-neighbour vote recovers " + " and ".join(
            parts
        )
        if space in v.counted:
            line += (
                f"; with near-duplicates of the same photo counted as neighbours it would read "
                f"{_pct(v.counted[space])} for {v.labeling}"
            )
        lines.append(line + ".")
    return lines


def verdict_markdown(
    v: Verdict | None, titles: dict[str, str] | None = None, missing: Sequence[str] = ()
) -> str:
    """A :class:`~explorer.atlas.Verdict` -> the sentences under the panels (Markdown; "" for
    no verdict).

    With one labelling: the 5-NN accuracies, then the reading -- best space, a tie, no better
    than chance, or why the numbers cannot be read (one label, classes too small, one space).
    With several (the teaching set's meaning, appearance, source): one line per space saying how
    often its neighbours recover each labelling against chance, then the comparison on the main
    labelling. ``titles``: display names of the spaces; ``missing``: the families that could not
    be opened (e.g. CLIP offline), named with what they would add.
    """
    if v is None:
        return ""
    titles = titles or {}
    if len(v.readings) > 1:
        text = "\n".join(_space_readings(v, titles)) + "\n\n"
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


def status_markdown(a: Atlas, shown: str, note: str = "", extra_note: str = "") -> str:
    """The line above the panels: the set's summary, its spaces, the map shown, the spaces that
    were left out and why."""
    failures = "".join(
        f"\n- **{markdown_text(ref)}** left out: {msg}" for ref, msg in a.failures.items()
    )
    summary = markdown_text(a.images.summary())  # file and class names are the visitor's
    return (
        f"**{summary}** Spaces: {', '.join(s.title for s in a.spaces)}; "
        f"map: {shown.upper()}. {note} {extra_note}{failures}"
    )


def text_search_note(a: Atlas, text: str, top: list[tuple[int, float]]) -> str:
    """The note above the text-search results: the sentence and its best match."""
    said = markdown_text(display_name(text.strip(), max_chars=120))
    label = markdown_text(display_name(a.labels[top[0][0]]))
    return (
        f"CLIP similarity to “{said}”: best #{top[0][0]} ({label}, "
        f"{top[0][1]:.3f}). Matches are circled in every panel."
    )
