"""The Perturbations tab's words and figures: the intro, what to notice (from the numbers), the
distance plot and the strips of perturbed images."""

from __future__ import annotations

from explorer.images import pictures, plots
from explorer.perturb import ladder as perturb
from explorer.perturb import measure as perturb_lab

INTRO = """
Perturb one photo step by step — hue, brightness, blur, JPEG, a few pixels of shift, a small
rotation, a mirror image — and measure how far each space moves, **as a fraction of the distance
between two unrelated photos** (100 % = "as far as a different picture"; the teaching set's photos
are the unrelated ones). A space that follows *meaning* should shrug off a mirror image; a VAE's
latent, a re-coded picture, should not. Open one of the teaching set's photos (the astronaut, the
cat, the coffee, the rocket) and the last plot shows how far *another photo of the same meaning*
is.
"""


FAMILY_CHOICES = {
    "VAE": "vae",
    "CLIP": "clip",
    "DINOv2": "dino",
    "Pixels (control)": "pixels",
    "Colour (control)": "colour",
    "Texture (control)": "texture",
}
"""The spaces the tab offers; the controls need no model (what pixels alone give)."""
DEFAULT_TICKS = ["VAE", "CLIP", "DINOv2", "Pixels (control)"]


TITLES = {
    "vae": "VAE latent",
    "clip": "CLIP",
    "dino": "DINOv2",
    "pixels": "Pixels (control)",
    "colour": "Colour (control)",
    "texture": "Texture (control)",
}


EXPECTED = {
    "clip": "CLIP would be expected to barely move for a mirror image, a little blur or JPEG, "
    "and to put another photo of the same meaning well under 100 %",
    "dino": "DINOv2 would be expected to shrug off a mirror image and small shifts, and to move "
    "more than CLIP for strong colour changes while still keeping the same meaning close",
}


UNITS = {p.name: p.unit for p in perturb.PERTURBATIONS}


def _title(space: str) -> str:
    family, model = space.split(":", 1)
    return f"{TITLES.get(family, family)} ({model})"


def _at(table, name: str, strength: float, space: str) -> float | None:
    hit = table[
        (table.perturbation == name) & (table.strength == strength) & (table.space == space)
    ]
    return float(hit.distance.iloc[0]) if len(hit) else None


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def what_to_notice(measured: perturb_lab.Measured, asked: list[str]) -> str:
    """The distances -> a few sentences quoting them; what a missing space would show."""
    table = measured.table
    lines = []
    for space in dict.fromkeys(table.space):
        flip, blur = _at(table, "flip", 1.0, space), _at(table, "blur", 1.0, space)
        rows = table[(table.space == space) & (table.perturbation != perturb.SAME_MEANING)]
        top = rows.loc[rows.distance.idxmax()]
        s = f"**{_title(space)}**: a flip moves it **{_pct(flip)}** of the way to an unrelated photo"
        s += f"; blur at 1 px moves it {_pct(blur)}" if blur is not None else ""
        s += (
            f"; the biggest move is {top.perturbation.replace('_', ' ')} at {top.strength:g} "
            f"({UNITS[top.perturbation]}): **{_pct(top.distance)}**"
        )
        same = table[
            (table.space == space)
            & (table.perturbation == perturb.SAME_MEANING)
            & (table.strength > 0)
        ]
        if len(same):
            s += (
                f"; another photo of the same meaning ({measured.refs.meaning}) is at "
                f"**{_pct(float(same.distance.mean()))}**"
            )
        lines.append(s + ".")
    for space, why in measured.failures.items():
        family = space.split(":", 1)[0]
        reason = why.split(". ")[0].rstrip(".")
        lines.append(
            f"**{_title(space)}** is not available here ({reason}). "
            f"{EXPECTED.get(family, 'It would show how a learned space moves')}."
        )
    if measured.failures:
        lines.append(
            "Get the missing models with `python -m explorer download` (needs internet once), "
            "then run again."
        )
    if not measured.refs.same_meaning:
        lines.append(
            "This photo is not one of the teaching set's, so there is no same-meaning row: open "
            "the astronaut, the cat, the coffee or the rocket to see it."
        )
    missing = [f for f in ("clip", "dino") if not any(s.startswith(f + ":") for s in asked)]
    if missing and "vae" in {s.split(":", 1)[0] for s in asked}:
        lines.append(
            "Tick "
            + " and ".join("CLIP" if f == "clip" else "DINOv2" for f in missing)
            + " to compare with a space trained on meaning."
        )
    return "**What to notice.** " + "\n\n".join(lines)


def _figure(table):
    present = [n for n in perturb.NAMES if n in set(table.perturbation)]
    lines = []
    for name in present:
        for space in dict.fromkeys(table.space):
            rows = table[(table.perturbation == name) & (table.space == space)]
            lines.append((name, space, rows.strength.to_numpy(), rows.distance.to_numpy()))
    return plots.perturbation_plot([(n, UNITS[n]) for n in present], lines)


def _strip(ladder: perturb.Ladder):
    side = 128
    return pictures.hstack([im.resize((side, side)) for _, im in ladder], gap=4)


def _strip_label(name: str, ladder: perturb.Ladder) -> str:
    steps = ", ".join(f"{s:g}" for s, _ in ladder)
    return f"{name.replace('_', ' ')}: strength {steps} ({UNITS[name]})"
