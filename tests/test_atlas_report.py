"""The atlas's reading of its numbers: the verdict as data (explorer.atlas.report) and the
sentence the atlas tab shows for it (explorer.ui.atlas.views)."""

from __future__ import annotations

import pandas as pd

from explorer.atlas import MIN_PER_CLASS, TIE, Verdict, verdict
from explorer.ui.atlas.views import verdict_markdown


def _table(**knn5):
    return pd.DataFrame(
        [{"space": k, "model": "m", "knn5": v, "chance": 0.25} for k, v in knn5.items()]
    )


LABELS = [c for c in "abcd" for _ in range(10)]


def text(table, labels):
    return verdict_markdown(verdict(table, labels))


def test_verdict_names_the_best_space_ties_and_chance():
    assert "**clip** groups this set by its labels best" in text(
        _table(vae=0.4, clip=0.95, dino=0.9), LABELS
    )
    assert "**clip** and **dino** group this set about equally well" in text(
        _table(vae=0.4, clip=0.95, dino=0.94), LABELS
    )
    assert "better than chance" in text(_table(vae=0.2, clip=0.26), LABELS)


def test_verdict_warns_when_classes_are_too_small():
    words = text(_table(vae=0.0, clip=0.0), ["a", "a", "b", "b"])
    assert "Too few images per class" in words and "smallest class has 2" in words
    assert "best" not in words
    assert "single label" in text(_table(vae=1.0), ["a"] * 8)


def test_the_verdict_is_data():
    v = verdict(_table(vae=0.4, clip=0.95, dino=0.9), LABELS)
    assert isinstance(v, Verdict)
    assert v.knn5 == {"vae": 0.4, "clip": 0.95, "dino": 0.9} and v.chance == 0.25
    assert (v.best, v.tied, v.leaders) == ("clip", [], ["clip"])
    assert (v.classes, v.smallest_class) == (4, 10) and v.readable
    assert not v.single_label and not v.small_classes and v.above_chance

    tie = verdict(_table(vae=0.4, clip=0.95, dino=0.95 - TIE), LABELS)
    assert tie.best is None and tie.tied == ["clip", "dino"] == tie.leaders
    apart = verdict(_table(vae=0.4, clip=0.95, dino=0.95 - TIE - 0.005), LABELS)
    assert apart.best == "clip" and apart.tied == []

    chance = verdict(_table(vae=0.2, clip=0.25 + TIE), LABELS)
    assert not chance.above_chance and chance.best is None and chance.tied == []
    assert chance.leaders == ["clip"]

    small = verdict(_table(vae=0.9, clip=0.1), ["a"] * (MIN_PER_CLASS - 1) + ["b"] * 10)
    assert small.small_classes and small.smallest_class == MIN_PER_CLASS - 1
    assert small.best is None and small.leaders == ["vae"]  # the ranking is still there
    enough = verdict(_table(vae=0.9, clip=0.1), ["a"] * MIN_PER_CLASS + ["b"] * 10)
    assert not enough.small_classes and enough.best == "vae"

    single = verdict(_table(vae=1.0), ["a"] * 8)
    assert single.single_label and single.classes == 1 and single.best is None
    no_labels = verdict(_table(vae=0.9, clip=0.1))
    assert no_labels.classes is None and no_labels.best == "vae"

    assert verdict(_table()) is None and verdict_markdown(None) == ""


def test_the_sentence_reads_every_space_and_chance():
    words = text(_table(vae=0.4, clip=0.95, dino=0.9), LABELS)
    assert words.startswith(
        "Leave-one-out 5-NN label accuracy: **vae** 40%, **clip** 95%, **dino** 90% (chance 25%). "
    )
    assert words.endswith("**clip** groups this set by its labels best.")
    small = text(_table(vae=0.0, clip=0.0), ["a", "a", "b", "b"])
    assert f"use at least {MIN_PER_CLASS} per class, better 10 or more." in small


def _multi(rows):
    return pd.DataFrame(
        [
            {"space": sp, "model": "m", "labels": lab, "knn5": k, "chance": c}
            for sp, lab, k, c in rows
        ]
    )


def test_one_space_makes_no_comparison():
    words = text(_table(vae=0.9), LABELS)
    assert "Only one space is open" in words
    assert "best" not in words and "equally" not in words
    assert verdict(_table(vae=0.9), LABELS).best is None


def test_several_labellings_read_per_space_and_compare_on_the_main_one():
    table = _multi(
        [
            ("vae", "meaning", 0.10, 0.07),
            ("vae", "appearance", 0.88, 0.14),
            ("vae", "meaning (same photo counted)", 1.0, 0.19),
            ("clip", "meaning", 0.90, 0.07),
            ("clip", "appearance", 0.20, 0.14),
            ("clip", "meaning (same photo counted)", 1.0, 0.19),
        ]
    )
    v = verdict(table, LABELS)
    assert v.labeling == "meaning" and v.knn5 == {"vae": 0.10, "clip": 0.90}
    assert v.readings["appearance"]["vae"] == (0.88, 0.14) and v.counted == {
        "vae": 1.0,
        "clip": 1.0,
    }
    words = verdict_markdown(v, {"vae": "VAE latents", "clip": "CLIP"})
    assert (  # in the order of the numbers, each beside its chance level
        "- **VAE latents**: its palette among other photos **88%** (chance 14%) ≫ its meaning "
        "among other photos **10%** (chance 7%: no better than chance)" in words
    )
    assert (
        "- **CLIP**: its meaning among other photos **90%** (chance 7%) ≫ its palette among "
        "other photos **20%** (chance 14%: no better than chance)" in words
    )
    assert "meaning would read 100%" in words
    assert words.endswith("**clip** groups this set by meaning best.")


def test_near_chance_is_read_as_chance_and_missing_spaces_are_named():
    table = _multi([("vae", "meaning", 0.10, 0.07), ("dino", "meaning", 0.09, 0.07)])
    words = verdict_markdown(verdict(table, LABELS), missing=["clip"])
    assert "No space groups this set by meaning clearly better than chance." in words
    assert "CLIP could not be opened here" in words and "python -m explorer download" in words
