"""A stand-in for the Hugging Face Hub on 127.0.0.1: it serves folders as model repos in the shape
huggingface_hub 2.x asks for them (read from its ``_snapshot_download.py``, ``file_download.py``
and ``hf_api.py``):

* ``GET /api/models/<repo>[/revision/<rev>]`` -> the repo's info (``id``, ``sha``: the commit,
  ``siblings``), which ``snapshot_download`` reads to resolve ``main`` to a commit;
* ``GET /api/models/<repo>/tree/<commit>?recursive=...`` -> every file (``type``, ``path``,
  ``size``, ``oid``), one page (no ``Link`` header);
* ``HEAD`` / ``GET /<repo>/resolve/<rev>/<path>`` -> the file, with ``X-Repo-Commit``, ``ETag``
  and ``Content-Length`` (``hf_hub_download``'s metadata call, then the download);
* anything else: 404 with ``X-Error-Code`` (``RepoNotFound`` / ``EntryNotFound``).

Point ``HF_ENDPOINT`` at :attr:`StandInHub.url` before huggingface_hub is imported (a subprocess)
or pass it as ``endpoint``. Every request is recorded in :attr:`StandInHub.requests`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class StandInHub:
    """``StandInHub({"owner/name": folder, ...})``: a loopback server of those repos."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = {
            repo: {
                p.relative_to(folder).as_posix(): p.read_bytes()
                for p in sorted(Path(folder).rglob("*"))
                if p.is_file()
            }
            for repo, folder in repos.items()
        }
        self.commits = {repo: self._commit(files) for repo, files in self.repos.items()}
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    @staticmethod
    def _commit(files: dict[str, bytes]) -> str:
        h = hashlib.sha1()
        for name, data in files.items():
            h.update(name.encode() + b"\0" + hashlib.sha1(data).digest())
        return h.hexdigest()  # 40 hex digits, as huggingface_hub's REGEX_COMMIT_HASH wants

    @property
    def url(self) -> str:
        assert self._server is not None, "start() it first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandInHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandInHub:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.close()

    # ------------------------------------------------------------------ answers

    def _repo_of(self, parts: list[str]) -> str | None:
        repo = "/".join(parts[:2])
        return repo if repo in self.repos else None

    def _answer(self, req: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(req.path).path)
        self.requests.append((req.command, path))
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "models"]:
            repo = self._repo_of(parts[2:])
            if repo is None:
                return self._error(req, 404, "RepoNotFound", body)
            rest = parts[4:]
            if not rest or rest[0] == "revision":
                info = {
                    "id": repo,
                    "sha": self.commits[repo],
                    "siblings": [{"rfilename": name} for name in self.repos[repo]],
                }
                return self._json(req, info, body)
            if rest[0] == "tree":
                prefix = "/".join(rest[2:])
                files = [
                    {
                        "type": "file",
                        "path": name,
                        "size": len(data),
                        "oid": hashlib.sha1(data).hexdigest(),
                    }
                    for name, data in self.repos[repo].items()
                    if name.startswith(prefix)
                ]
                return self._json(req, files, body)
            return self._error(req, 404, "EntryNotFound", body, repo)
        repo = self._repo_of(parts)
        if repo is None or len(parts) < 5 or parts[2] != "resolve":
            return self._error(req, 404, "RepoNotFound", body)
        name = "/".join(parts[4:])
        data = self.repos[repo].get(name)
        if data is None:
            return self._error(req, 404, "EntryNotFound", body, repo)
        req.send_response(200)
        req.send_header("X-Repo-Commit", self.commits[repo])
        req.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        req.send_header("Content-Length", str(len(data)))
        req.send_header("Content-Type", "application/octet-stream")
        req.end_headers()
        if body:
            req.wfile.write(data)

    def _json(self, req: BaseHTTPRequestHandler, value, body: bool) -> None:
        data = json.dumps(value).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if body:
            req.wfile.write(data)

    def _error(self, req, status: int, code: str, body: bool, repo: str | None = None) -> None:
        data = json.dumps({"error": code}).encode()
        req.send_response(status)
        req.send_header("X-Error-Code", code)
        if repo is not None:
            req.send_header("X-Repo-Commit", self.commits[repo])
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if body:
            req.wfile.write(data)
