"""The augmentation set: offline, labelled, deterministic, recoloured by histogram matching."""

from __future__ import annotations

import numpy as np
import pytest

from explorer import datasets as ds
from explorer.datasets import augmented


def test_augmented_set_is_deterministic_labelled_and_small():
    augmented.SAMPLES.clear()  # a cold build: photos decoded from scikit-image's files
    a = ds.augmented_set()
    b = ds.augmented_set()

    assert 60 <= len(a) <= 120
    assert a.labels == b.labels and a.paths == b.paths
    assert all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(a.images, b.images, strict=True)
    )
    assert all(im.mode == "RGB" and max(im.size) <= ds.MAX_SIDE for im in a.images)
    assert not a.skipped and a.description

    counts = a.class_counts()
    assert len(counts) >= 5
    for name in ("astronaut", "cat", "coffee", "rocket", "face", "non-face"):
        assert counts.get(name, 0) >= 4, counts
    assert all(label.strip() and label == label.lower() for label in a.labels)

    # same object, different colours: a hue-rotated cat labelled "cat"
    hue_cats = [p for p, lab in zip(a.paths, a.labels, strict=True) if lab == "cat" and "hue" in p]
    assert hue_cats
    # same colours, different object: the cat in the coffee's palette is still a cat
    swapped = [i for i, p in enumerate(a.paths) if "chelsea" in p and "palette of coffee" in p]
    assert len(swapped) == 1 and a.labels[swapped[0]] == "cat"
    coffee = np.asarray(a.images[a.paths.index("skimage:coffee.png")], dtype=np.float64)
    cat = np.asarray(a.images[a.paths.index("skimage:chelsea.png")], dtype=np.float64)
    recoloured = np.asarray(a.images[swapped[0]], dtype=np.float64)
    mean = lambda x: x.reshape(-1, 3).mean(0)  # noqa: E731
    assert np.abs(mean(recoloured) - mean(coffee)).sum() < np.abs(mean(cat) - mean(coffee)).sum()
    # histogram matching: each channel of the recoloured cat has the coffee's distribution
    q = np.linspace(0.02, 0.98, 25)
    for ch in range(3):
        gap = np.quantile(recoloured[..., ch], q) - np.quantile(coffee[..., ch], q)
        before = np.quantile(cat[..., ch], q) - np.quantile(coffee[..., ch], q)
        assert np.abs(gap).mean() <= 2 and np.abs(gap).max() <= 8, (ch, gap)
        assert np.abs(before).mean() > 10 * np.abs(gap).mean(), (ch, before)
    # and the content of the cat: brightness order is kept wherever the cat's pixels differ
    grey_cat, grey_new = cat.mean(-1).ravel(), recoloured.mean(-1).ravel()
    assert np.corrcoef(grey_cat, grey_new)[0, 1] > 0.8

    # deterministic across processes: a cold rebuild gives the same pixels
    augmented.SAMPLES.clear()
    again = ds.augmented_set()
    assert all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(a.images, again.images, strict=True)
    )

    # another seed changes the augmentations, not the originals
    c = ds.augmented_set(seed=1)
    assert c.labels == a.labels
    i = a.paths.index("skimage:chelsea.png")
    assert np.array_equal(np.asarray(a.images[i]), np.asarray(c.images[i]))
    assert not all(
        x.size == y.size and np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(a.images, c.images, strict=True)
    )
    assert len(ds.augmented_set(n_aug=0)) < len(a)
    with pytest.raises(ValueError):
        ds.augmented_set(n_aug=-1)
