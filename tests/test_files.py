"""explorer.core.files: the process's temporary folder, per-request paths, pruning by age and size."""

from __future__ import annotations

import os

from explorer.core import files


def test_request_folders_are_pruned_by_age_and_size_and_thumbnails_kept(tmp_path):
    base = tmp_path / "requests"
    base.mkdir()
    now = 1_000_000.0
    made = {}
    for name, age, size in (("old", 7200, 10), ("mid", 600, 3000), ("new", 10, 3000)):
        folder = base / name
        folder.mkdir()
        (folder / "x.bin").write_bytes(b"x" * size)
        os.utime(folder, (now - age, now - age))
        made[name] = folder
    thumbs = base / "thumbs"
    thumbs.mkdir()
    (thumbs / "t.jpg").write_bytes(b"t" * 5000)
    os.utime(thumbs, (now - 9999, now - 9999))
    keep = lambda p: p.name == "thumbs"  # noqa: E731
    # age: only "old" is past an hour
    assert files.prune(base, 3600, 1e9, now=now, keep=keep) == 1
    assert not made["old"].exists() and made["mid"].exists() and thumbs.exists()
    # size: 6,000 bytes of request folders (+ kept thumbnails) into 4,000: the oldest goes first
    assert files.prune(base, 3600, 4000 + 5000, now=now, keep=keep) == 1
    assert not made["mid"].exists() and made["new"].exists() and thumbs.exists()


def test_tmp_paths_are_fresh_folders_under_the_process_root():
    a, b = files.tmp_path("same.gif"), files.tmp_path("same.gif")
    assert a != b and a.name == b.name == "same.gif"
    assert a.parent.parent.parent == files.tmp_root() and a.parent.is_dir()


def test_cap_folder_goes_by_size_only_oldest_first_and_spares_kept_paths(tmp_path):
    made = []
    for i in range(5):  # five upload folders of 1,000 bytes, i = 0 the oldest
        folder = tmp_path / f"upload{i}"
        folder.mkdir()
        (folder / "image.png").write_bytes(b"x" * 1000)
        os.utime(folder, (1_000 + i, 1_000 + i))  # all far older than any age rule: not used
        made.append(folder)
    kept = {str(made[0] / "image.png")}  # an example Gradio keeps in its cache
    assert files.cap_folder(tmp_path, 10_000, kept) == 0  # under the cap: nothing goes
    assert files.cap_folder(tmp_path, 2_500, kept) == 3  # 5,000 -> 2,000: upload1..3 go
    assert [f.exists() for f in made] == [True, False, False, False, True]
    assert files.cap_folder(tmp_path, 0, kept) == 1 and made[0].exists()  # kept, even over
