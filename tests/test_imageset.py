"""The ImageSet type: its summary line, skipped files with their short reasons, subsets."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from PIL import Image

from explorer import datasets as ds
from explorer.core.errors import BadImageError
from explorer.datasets.imageset import finish


def _tiny_set(labels, skipped=()):
    ims = [Image.new("RGB", (4, 4), (i, i, i)) for i in range(len(labels))]
    return ds.ImageSet(
        "t", ims, list(labels), [f"{i}.png" for i in range(len(labels))], list(skipped)
    )


def test_summary_counts_and_skipped():
    s = _tiny_set(["cat", "cat", "dog", "dog"])
    assert s.summary() == "4 images in 2 classes (2 each)"
    s = _tiny_set(
        ["cat", "cat", "dog"], [ds.Skip("a.txt", "not an image ('.txt' file)", "not an image")]
    )
    assert (
        s.summary() == "3 images in 2 classes (cat 2, dog 1); 1 file skipped: a.txt (not an image)"
    )
    # the short form is the one the loader gave when it skipped the file (here, the error's)
    error = BadImageError(
        "This image file is damaged or incomplete (it could not be fully decoded); ...",
        short="damaged or incomplete",
    )
    s = _tiny_set(["a"] * 3, [ds.Skip(f"{i}.jpg", str(error), error.short) for i in range(5)])
    assert s.summary().endswith(
        "5 files skipped: 0.jpg (damaged or incomplete), 1.jpg (damaged or incomplete), "
        "2.jpg (damaged or incomplete), and 2 more"
    )
    assert "(1–3 per class)" in _tiny_set([f"c{i}" for i in range(9)] + ["c0", "c0"]).summary()
    # a plain (path, reason) pair has no short form: the reason is shown whole, never cut up
    s = _tiny_set(["a"] * 3, [("x.bin", "unreadable; see the log")])
    assert s.summary().endswith("1 file skipped: x.bin (unreadable; see the log)")


def test_a_skip_is_a_path_reason_pair_with_a_short_form():
    skip = ds.Skip("a/b.txt", "not an image ('.txt' file)", "not an image")
    assert skip == ("a/b.txt", "not an image ('.txt' file)")
    path, reason = skip
    assert (path, reason) == (skip.path, skip.reason) and skip.short == "not an image"
    assert dict([skip]) == {"a/b.txt": "not an image ('.txt' file)"}
    for other in (copy.copy(skip), copy.deepcopy(skip), pickle.loads(pickle.dumps(skip))):
        assert other == skip and other.short == "not an image"
    assert ds.Skip("x", "whole reason").short == "whole reason"
    assert BadImageError("A sentence.").short == "A sentence."
    # plain pairs given to a set become Skips; subsets keep them
    s = _tiny_set(["a", "b", "a"], [("x", "y")])
    assert isinstance(s.skipped[0], ds.Skip) and s.subset([0]).skipped[0].short == "y"


def test_finish_checks_the_minimums_and_names_the_first_skip():
    ims = [Image.new("RGB", (4, 4)) for _ in range(3)]
    skip = ds.Skip("a.txt", "not an image ('.txt' file)", "not an image")
    with pytest.raises(ds.DatasetError) as info:
        finish("n", "'x.zip'", [], [], [], [skip, skip], "Do this.")
    assert str(info.value) == (
        "No readable images were found in 'x.zip' (2 files skipped, e.g. a.txt: not an image). "
        "Do this."
    )
    with pytest.raises(ds.DatasetError, match=r"Only 2 readable images found in 'x\.zip'"):
        finish("n", "'x.zip'", ims[:2], ["a", "b"], ["1", "2"], [], "Do this.")
    with pytest.raises(ds.DatasetError, match="Found one class 'a'"):
        finish("n", "'x.zip'", ims, ["a"] * 3, ["1", "2", "3"], [], "Do this.")
    one_class = finish("n", "'x'", ims, ["a"] * 3, ["1", "2", "3"], [skip], "", need_classes=False)
    assert one_class.classes == ["a"] and one_class.skipped == [skip]


def test_subset_and_validation():
    s = _tiny_set(["a", "b", "c", "d"], [("x", "y")])
    sub = s.subset([2, 0])
    assert sub.labels == ["c", "a"] and sub.paths == ["2.png", "0.png"]
    assert sub.images[0] is s.images[2] and sub.skipped == s.skipped
    assert s.subset(np.array([True, False, False, True])).labels == ["a", "d"]
    assert s.subset(slice(1, 3)).labels == ["b", "c"]
    assert len(s.subset([])) == 0
    with pytest.raises(IndexError):
        s.subset([4])
    with pytest.raises(ValueError):
        s.subset(np.array([True, False]))
    with pytest.raises(ValueError, match="same length"):
        ds.ImageSet("bad", s.images, ["a"], s.paths)
