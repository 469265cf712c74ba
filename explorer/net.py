"""Is the Hugging Face Hub reachable? Asked before any download, so that offline use fails fast.

Reads HF_HUB_OFFLINE / HF_DATASETS_OFFLINE at call time, honours HF_ENDPOINT and proxies, and
bounds DNS + connect with a timeout (name resolution has none of its own).
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.request
from urllib.parse import urlsplit

HUB_TIMEOUT_S = 3.0
"""Seconds allowed for the reachability check (DNS + TCP connect) before giving up."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _can_connect(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` s, DNS included.

    Runs in a daemon thread because name resolution has no timeout of its own.
    """
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except (OSError, ValueError):
            result.append(False)

    thread = threading.Thread(target=attempt, name="hub-reachable", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def hub_unreachable_reason(timeout: float = HUB_TIMEOUT_S) -> str | None:
    """None when the Hub looks reachable, else a short reason (offline flag, no connection)."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if _truthy(os.environ.get(var)):
            return f"{var} is set"
    try:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return "HF_HUB_OFFLINE is set"
        endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of datasets
        endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlsplit(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    target = (host, port)
    proxy = urllib.request.getproxies().get(url.scheme or "https")
    if proxy and not urllib.request.proxy_bypass(host):
        purl = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if purl.hostname:
            target = (purl.hostname, purl.port or 80)
    if not _can_connect(target[0], target[1], timeout):
        via = f" (through the proxy {target[0]})" if target[0] != host else ""
        return f"{host} could not be reached within {timeout:g} s{via}"
    return None
