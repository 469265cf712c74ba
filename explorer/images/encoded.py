"""Images held as their encoded bytes (a few KB of JPEG each) and decoded only when read: a
read-only sequence of RGB PIL images whose memory is what :attr:`EncodedImages.nbytes` says."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator, Sequence
from typing import overload

from PIL import Image

__all__ = ["EncodedImages", "pillow_nbytes"]

_ONE_BYTE = frozenset({"1", "L", "P"})


def pillow_nbytes(im: Image.Image) -> int:
    """What a decoded Pillow image holds: 1 byte per pixel for 1/L/P, 2 for 16-bit modes, 4 for
    every other mode (Pillow stores RGB in 4 bytes a pixel), plus its line table."""
    mode = im.mode
    per = 1 if mode in _ONE_BYTE else 2 if mode.startswith("I;16") else 4
    return im.width * im.height * per + im.height * 8


class EncodedImages(Sequence[Image.Image]):
    """``EncodedImages([jpeg bytes, ...])``: ``len``, indexing and iteration give RGB PIL images
    decoded from the bytes at that moment (a slice gives another :class:`EncodedImages`)."""

    def __init__(self, encoded: Sequence[bytes]):
        self._data = [bytes(b) for b in encoded]

    def __len__(self) -> int:
        return len(self._data)

    @overload
    def __getitem__(self, i: int) -> Image.Image: ...

    @overload
    def __getitem__(self, i: slice) -> EncodedImages: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return EncodedImages(self._data[i])
        with Image.open(io.BytesIO(self._data[i])) as im:
            return im.convert("RGB")

    def __iter__(self) -> Iterator[Image.Image]:
        return (self[i] for i in range(len(self)))

    def encoded(self, i: int) -> bytes:
        """Image ``i``'s bytes, as held."""
        return self._data[i]

    @property
    def nbytes(self) -> int:
        """Bytes held: the encoded data, their ``bytes`` objects and the list."""
        return sys.getsizeof(self._data) + sum(sys.getsizeof(b) for b in self._data)
