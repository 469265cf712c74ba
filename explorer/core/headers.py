"""An ASGI middleware for the headers of what the app serves: every response says
``X-Content-Type-Options: nosniff`` (a browser never guesses a type the server did not name), and a
file the app serves whose type a browser would run as a page (HTML, XHTML, SVG, XML: the atlas
export ``atlas.html`` among them) goes out as a download, ``Content-Disposition: attachment``, so
it never runs on the app's own origin.

Files are the routes Gradio serves them from (``.../file=<path>``); the app's own page and its
API answers are left as they are (apart from ``nosniff``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

__all__ = ["ACTIVE_TYPES", "SafeDownloads", "attachment"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]

ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
    }
)
"""Content types a browser renders as a document that can run script."""

_ACTIVE_SUFFIXES = (".html", ".htm", ".xhtml", ".svg", ".svgz", ".xml", ".xsl")
_FILE_ROUTE = re.compile(r"/file=(.+)$")


def attachment(name: str) -> bytes:
    """A ``Content-Disposition: attachment`` value naming ``name`` (ASCII only, quoted)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(name))[:120] or "download"
    return f'attachment; filename="{safe}"'.encode("latin-1")


class SafeDownloads:
    """``SafeDownloads(app)``: see the module."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        m = _FILE_ROUTE.search(unquote(scope.get("path") or ""))
        name = m.group(1) if m else None

        async def patched(message: Message) -> None:
            if message.get("type") == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers") or []
                    if k.lower() != b"x-content-type-options"
                ]
                headers.append((b"x-content-type-options", b"nosniff"))
                if name is not None:
                    ctype = next(
                        (v for k, v in headers if k.lower() == b"content-type"), b""
                    ).decode("latin-1")
                    active = ctype.split(";", 1)[0].strip().lower() in ACTIVE_TYPES
                    if active or name.lower().endswith(_ACTIVE_SUFFIXES):
                        headers = [
                            (k, v) for k, v in headers if k.lower() != b"content-disposition"
                        ]
                        headers.append((b"content-disposition", attachment(name)))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, patched)
