"""A local stand-in for the Hugging Face Hub: serves repos with the file layouts the real ones have.

It answers the few routes `huggingface_hub` (and through it transformers and diffusers) uses to
download: the model-info API with its file listing (`siblings`), and `resolve/<revision>/<file>`
(HEAD for metadata, GET for the bytes), with the `X-Repo-Commit` and `ETag` headers. Every
request is logged, so a test can check what was (and was not) fetched.

    hub = FakeHub({"gpt2": {"607a30d...": {"config.json": b"{...}", "pytorch_model.bin": b"junk"}}})
    with hub:                      # serving on 127.0.0.1, a free port
        os.environ["HF_ENDPOINT"] = hub.url
    hub.requested                  # ["/api/models/gpt2/revision/607a30d...", "/gpt2/resolve/607a30d.../config.json", ...]

Only loopback is used; nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

# repo id -> revision (a branch name or a commit sha) -> path in the repo -> file contents
Layout = dict[str, dict[str, dict[str, bytes]]]


class FakeHub:
    def __init__(self, repos: Layout, aliases: dict[str, dict[str, str]] | None = None) -> None:
        self.repos = repos
        self.aliases = aliases or {}  # repo id -> branch name -> commit sha it points at
        self.requested: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

            def do_GET(self) -> None:
                hub._answer(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # ---- routes ----------------------------------------------------------------------------------

    def _commit(self, repo: str, revision: str) -> str | None:
        revision = self.aliases.get(repo, {}).get(revision, revision)
        return revision if revision in self.repos.get(repo, {}) else None

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(handler.path.split("?", 1)[0])
        with self._lock:
            self.requested.append(path)
        if path in ("", "/"):
            return self._send(handler, 200, b"fake hub", body)
        if path.startswith("/api/models/") and "/tree/" in path:
            return self._tree(handler, path[len("/api/models/"):], handler.path, body)
        if path.startswith("/api/models/"):
            rest = path[len("/api/models/"):]
            repo, _, revision = rest.partition("/revision/")
            revision = revision or "main"
            commit = self._commit(repo, revision)
            if commit is None:
                return self._error(handler, 404, "RepoNotFound" if repo not in self.repos else "RevisionNotFound", body)
            files = self.repos[repo][commit]
            info = {"id": repo, "modelId": repo, "sha": commit, "private": False, "disabled": False, "gated": False,
                    "siblings": [{"rfilename": f} for f in sorted(files)], "tags": [], "downloads": 0, "likes": 0}
            return self._send(handler, 200, json.dumps(info).encode(), body, "application/json")
        for repo in sorted(self.repos, key=len, reverse=True):
            prefix = f"/{repo}/resolve/"
            if path.startswith(prefix):
                revision, _, filename = path[len(prefix):].partition("/")
                if revision.startswith("refs/pr/"):  # "refs/pr/1/file": the revision has slashes
                    number, _, filename = filename.partition("/")
                    revision = f"{revision}/{number}"
                commit = self._commit(repo, revision)
                if commit is None:
                    return self._error(handler, 404, "RevisionNotFound", body)
                files = self.repos[repo][commit]
                if filename not in files:
                    return self._error(handler, 404, "EntryNotFound", body, commit)
                data = files[filename]
                headers = {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
                return self._send(handler, 200, data, body, "application/octet-stream", headers)
        return self._error(handler, 404, "RepoNotFound", body)

    def _tree(self, handler, rest: str, raw: str, body: bool) -> None:
        """list_repo_tree: the entries under a folder (all of them below it when recursive)."""
        repo, _, tail = rest.partition("/tree/")
        revision, _, folder = tail.partition("/")
        if revision == "refs" and folder.startswith("pr/"):
            number, _, folder = folder[3:].partition("/")
            revision = f"refs/pr/{number}"
        commit = self._commit(repo, revision)
        if commit is None:
            return self._error(handler, 404, "RevisionNotFound", body)
        recursive = "recursive=true" in raw.lower() or "recursive=1" in raw
        prefix = f"{folder.rstrip('/')}/" if folder else ""
        entries, dirs = [], set()
        for name, data in sorted(self.repos[repo][commit].items()):
            if not name.startswith(prefix):
                continue
            rel = name[len(prefix):]
            parts = rel.split("/")
            for i in range(1, len(parts)):
                if recursive or i == 1:
                    dirs.add(prefix + "/".join(parts[:i]))
            if recursive or len(parts) == 1:
                entries.append({"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()})
        entries += [{"type": "directory", "path": d, "size": 0, "oid": hashlib.sha1(d.encode()).hexdigest()} for d in sorted(dirs)]
        if folder and not entries:
            return self._error(handler, 404, "EntryNotFound", body, commit)
        return self._send(handler, 200, json.dumps(entries).encode(), body, "application/json")

    def _send(self, handler, status: int, data: bytes, body: bool, ctype: str = "text/plain", headers: dict | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def _error(self, handler, status: int, code: str, body: bool, commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": code}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(handler, status, json.dumps({"error": code}).encode(), body, "application/json", headers)


def folder_files(folder: Path, prefix: str = "") -> dict[str, bytes]:
    """Every file under `folder` as {prefix + relative path: bytes}."""
    return {prefix + str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
