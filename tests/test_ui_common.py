"""Shared UI pieces that need no launched app: atomic output images."""

from __future__ import annotations

import os
import threading

import numpy as np
from PIL import Image

from explorer.ui.components import ImageOut, cache_image_atomically
from tests.helpers import noise_image


def test_same_image_same_whole_file_written_once(tmp_path):
    a = cache_image_atomically(noise_image(0, (64, 64)), str(tmp_path))
    inode = Image.open(a).size, os.stat(a).st_ino
    b = cache_image_atomically(noise_image(0, (64, 64)), str(tmp_path))
    assert a == b and (Image.open(b).size, os.stat(b).st_ino) == inode
    assert cache_image_atomically(noise_image(1, (64, 64)), str(tmp_path)) != a
    with Image.open(a) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")).shape, (64, 64, 3))


def test_arrays_like_gradio(tmp_path):
    arr = np.linspace(0, 1, 64 * 64 * 3).reshape(64, 64, 3)  # floats in [0, 1], as gradio takes
    with Image.open(cache_image_atomically(arr, str(tmp_path), "png")) as im:
        got = np.asarray(im)
    assert got.dtype == np.uint8 and got.min() == 0 and got.max() == 255


def test_readers_never_see_a_partial_file_while_sessions_write_the_same_image(tmp_path):
    """Sessions producing the same image at once while another session downloads it."""
    img = noise_image(0, (64, 64))
    path = cache_image_atomically(img, str(tmp_path))
    size = os.path.getsize(path)
    stop, seen = threading.Event(), []

    def write():
        while not stop.is_set():
            cache_image_atomically(img, str(tmp_path))

    def read():
        for _ in range(2000):
            with open(path, "rb") as f:
                seen.append(len(f.read()))
        stop.set()

    threads = [threading.Thread(target=write) for _ in range(4)] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(seen) == {size}


def test_image_out_postprocess_goes_through_the_atomic_cache(tmp_path):
    out = ImageOut(interactive=False)
    out.GRADIO_CACHE = str(tmp_path)
    data = out.postprocess(noise_image(0, (64, 64)))
    assert data.path == cache_image_atomically(noise_image(0, (64, 64)), str(tmp_path))
    assert out.postprocess(None) is None
