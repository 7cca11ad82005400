"""A local, in-memory stand-in for the Hugging Face Hub HTTP API (test helper, not a test).

Speaks the part of the protocol that ``huggingface_hub`` 2.x uses to create a repo, commit files
and download a snapshot, so tests can push and pull over real HTTP without the internet::

    with FakeHub() as hub:                       # 127.0.0.1, a free port, threaded
        env = {"HF_ENDPOINT": hub.url, ...}      # set before huggingface_hub is imported

Endpoints (paths as the client builds them; ``{rev}`` and branch names arrive URL-quoted):

    POST /api/repos/create                           {"name", "organization", "visibility"?} -> {"url"}; 409 if
                                                     it exists (with "url", which create_repo(exist_ok) reads)
    POST /api/validate-yaml                          README.md front matter must parse to a mapping
    POST /api/models/{repo}/preupload/{rev}          every file "regular" (inline base64), with the current blob oid
    POST /api/models/{repo}/commit/{rev}             NDJSON: header, file (base64), deletedFile, deletedFolder
    POST /api/models/{repo}/branch/{branch}          {"startingPoint"?}; 409 if it exists
    GET  /api/models/{repo}[/revision/{rev}]         {"id", "sha", "siblings": [{"rfilename"}], ...}
    GET  /api/models/{repo}/tree/{rev}[/{path}]      [{"type", "path", "size", "oid"}] (?recursive=True)
    HEAD|GET /{repo}/resolve/{rev}/{path}            X-Repo-Commit, ETag (git blob sha1), Content-Length; no redirects
    GET  /api/whoami-v2, /api/agent-harnesses        minimal answers

Errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) as the Hub's do, so the
client raises its own typed errors. Writes need an ``Authorization: Bearer`` header. Commits are kept in memory:
``commits[sha] = {path: bytes}``, ``branches[repo][name] = sha``, so a commit sha or a branch name pins a revision.
Every request is logged in ``requests`` as ``(method, path)``. Bodies over ``max_body`` bytes are refused, each
connection times out after ``timeout`` seconds idle, and the context manager (or ``stop()``) shuts it all down.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

__all__ = ["FakeHub", "git_blob_sha1"]


def git_blob_sha1(data: bytes) -> str:
    """The oid git (and the Hub) give a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.commit, self.extra = status, code, commit, extra or {}


_API_REPO = re.compile(r"^/api/models/([^/]+/[^/]+)(?:/(revision|tree|preupload|commit|branch)/([^/]+)(/.*)?)?$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class FakeHub:
    """In-memory Hub. ``url`` is the endpoint; ``commits``, ``branches``, ``repos`` and ``requests`` are inspectable."""

    def __init__(self, max_body: int = 64 << 20, timeout: float = 30.0):
        self.max_body, self.timeout = max_body, timeout
        self.lock = threading.Lock()
        self.repos: dict[str, dict] = {}                 # repo id -> {"private": bool}
        self.branches: dict[str, dict[str, str]] = {}    # repo id -> branch -> commit sha
        self.commits: dict[str, dict[str, bytes]] = {}   # commit sha -> {path: content}
        self.history: dict[str, list[str]] = {}          # repo id -> commit shas, oldest first
        self.messages: dict[str, str] = {}               # commit sha -> summary
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        Handler.timeout = self.timeout
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- store -------------------------------------------------------------------------------------
    def _repo(self, repo_id: str) -> dict:
        if repo_id not in self.repos:
            raise _HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return self.repos[repo_id]

    def resolve(self, repo_id: str, revision: str) -> str:
        """Branch name or (full) commit sha -> commit sha."""
        self._repo(repo_id)
        if revision in self.branches[repo_id]:
            return self.branches[repo_id][revision]
        if revision in self.history[repo_id]:
            return revision
        raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _new_commit(self, repo_id: str, parent: str | None, files: dict[str, bytes], summary: str) -> str:
        h = hashlib.sha1(f"{repo_id}\0{parent}\0{summary}\0{len(self.commits)}".encode())
        for path in sorted(files):
            h.update(path.encode() + b"\0" + git_blob_sha1(files[path]).encode())
        sha = h.hexdigest()
        self.commits[sha] = dict(files)
        self.history[repo_id].append(sha)
        self.messages[sha] = summary
        return sha

    def create_repo(self, repo_id: str, private: bool = False) -> None:
        with self.lock:
            if repo_id in self.repos:  # the Hub's 409 carries the url; create_repo(exist_ok=True) returns it
                raise _HubError(409, "You already created this model repo", extra={"url": f"{self.url}/{repo_id}"})
            self.repos[repo_id] = {"private": private}
            self.branches[repo_id] = {}
            self.history[repo_id] = []
            attributes = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
            self.branches[repo_id]["main"] = self._new_commit(repo_id, None, {".gitattributes": attributes},
                                                              "initial commit")

    def put_files(self, repo_id: str, files: dict[str, bytes], branch: str = "main", message: str = "test") -> str:
        """Commit ``files`` (added to the branch head's) straight into the store, as another client might."""
        with self.lock:
            parent = self.branches[repo_id][branch]
            sha = self._new_commit(repo_id, parent, {**self.commits[parent], **files}, message)
            self.branches[repo_id][branch] = sha
            return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        with self.lock:
            return dict(self.commits[self.resolve(repo_id, revision)])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every answer has a Content-Length
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    hub: FakeHub

    def log_message(self, *args) -> None:  # quiet
        pass

    # -- plumbing ----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None, head: bool = False) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})}, head)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        if n > self.hub.max_body:
            raise _HubError(413, f"body of {n} bytes is over the limit of {self.hub.max_body}")
        if n == 0 and self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._chunked()
        return self.rfile.read(n)

    def _chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()
            if len(out) > self.hub.max_body:
                raise _HubError(413, "body over the limit")

    def _auth(self) -> None:
        if not (self.headers.get("Authorization") or "").startswith("Bearer "):
            raise _HubError(401, "Invalid credentials in Authorization header")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        with self.hub.lock:
            self.hub.requests.append((method, path))
        head = method == "HEAD"
        try:
            if method == "POST":
                body = self._body()
            if path == "/api/whoami-v2" and method == "GET":
                self._auth()
                return self._json(200, {"type": "user", "name": "tester", "orgs": []})
            if path == "/api/agent-harnesses":
                return self._json(200, {"standardEnvVars": [], "harnesses": {}})
            if path == "/api/repos/create" and method == "POST":
                self._auth()
                req = json.loads(body)
                repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else f"tester/{req['name']}"
                self.hub.create_repo(repo_id, private=req.get("visibility") == "private" or bool(req.get("private")))
                return self._json(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id})
            if path == "/api/validate-yaml" and method == "POST":
                return self._validate_yaml(json.loads(body))
            m = _API_REPO.match(path)
            if m:
                repo_id, action, rev, rest = m.group(1), m.group(2), m.group(3), m.group(4)
                rev = unquote(rev) if rev else "main"
                if method == "GET" and action in (None, "revision"):
                    return self._info(repo_id, rev)
                if method == "GET" and action == "tree":
                    return self._tree(repo_id, rev, unquote(rest[1:]) if rest else "",
                                      query.get("recursive", ["False"])[0].lower() == "true")
                if method == "POST" and action == "preupload":
                    self._auth()
                    return self._preupload(repo_id, rev, json.loads(body))
                if method == "POST" and action == "commit":
                    self._auth()
                    return self._commit(repo_id, rev, body)
                if method == "POST" and action == "branch":
                    self._auth()
                    return self._branch(repo_id, rev, json.loads(body or b"{}"))
            m = _RESOLVE.match(path)
            if m and method in ("GET", "HEAD"):
                return self._resolve(m.group(1), unquote(m.group(2)), unquote(m.group(3)), head)
            raise _HubError(404, f"no route for {method} {path}")
        except _HubError as e:
            headers = {"X-Error-Message": str(e)}
            if e.code:
                headers["X-Error-Code"] = e.code
            if e.commit:
                headers["X-Repo-Commit"] = e.commit
            self._json(e.status, {"error": str(e), **e.extra}, headers, head)

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    # -- endpoints ---------------------------------------------------------------------------------
    def _validate_yaml(self, req: dict) -> None:
        m = re.match(r"^\s*---\s*\n(.*?)\n---\s*\n", req.get("content", ""), re.S)
        if m is None:
            return self._json(200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
        try:
            meta = yaml.safe_load(m.group(1))
        except yaml.YAMLError as e:
            return self._json(400, {"errors": [{"message": f"invalid YAML: {e}"}]})
        if not isinstance(meta, dict):
            return self._json(400, {"errors": [{"message": "metadata must be a mapping"}]})
        return self._json(200, {"errors": [], "warnings": []})

    def _info(self, repo_id: str, rev: str) -> None:
        hub = self.hub
        with hub.lock:
            repo = hub._repo(repo_id)
            sha = hub.resolve(repo_id, rev)
            files = hub.commits[sha]
        self._json(200, {"id": repo_id, "modelId": repo_id, "author": repo_id.split("/")[0], "sha": sha,
                         "private": repo["private"], "disabled": False, "gated": False, "tags": [],
                         "lastModified": "2024-01-01T00:00:00.000Z",
                         "siblings": [{"rfilename": p} for p in sorted(files)]})

    def _tree(self, repo_id: str, rev: str, prefix: str, recursive: bool) -> None:
        hub = self.hub
        with hub.lock:
            sha = hub.resolve(repo_id, rev)
            files = hub.commits[sha]
        base = prefix.rstrip("/") + "/" if prefix else ""
        entries, folders = [], set()
        for p in sorted(files):
            if not p.startswith(base):
                continue
            rel = p[len(base):]
            dirs = rel.split("/")[:-1]
            for i in range(1, len(dirs) + 1):
                if i == 1 or recursive:
                    folders.add(base + "/".join(dirs[:i]))
            if recursive or not dirs:
                entries.append({"type": "file", "path": p, "size": len(files[p]), "oid": git_blob_sha1(files[p])})
        if prefix and not entries and not folders:
            raise _HubError(404, f"{prefix} does not exist at {rev}", "EntryNotFound", sha)
        entries += [{"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest()}
                    for d in sorted(folders)]
        self._json(200, entries)

    def _preupload(self, repo_id: str, rev: str, req: dict) -> None:
        hub = self.hub
        with hub.lock:
            files = hub.commits[hub.resolve(repo_id, rev)]
        out = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                "oid": git_blob_sha1(files[f["path"]]) if f["path"] in files else None} for f in req["files"]]
        self._json(200, {"files": out, "commitOid": None})

    def _commit(self, repo_id: str, rev: str, body: bytes) -> None:
        hub = self.hub
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HubError(400, "the first NDJSON line must be the commit header")
        header = lines[0]["value"]
        with hub.lock:
            hub._repo(repo_id)
            if rev not in hub.branches[repo_id]:
                raise _HubError(404, f"Invalid rev id: {rev} (commits go to a branch)", "RevisionNotFound")
            parent = hub.branches[repo_id][rev]
            if header.get("parentCommit") not in (None, parent):
                raise _HubError(412, f"parent commit {header['parentCommit']} is not the head of {rev}")
            files = dict(hub.commits[parent])
            for op in lines[1:]:
                key, value = op["key"], op["value"]
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise _HubError(400, f"unsupported encoding {value.get('encoding')!r}")
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    if value["path"] not in files:
                        raise _HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[value["path"]]
                elif key == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    files = {p: c for p, c in files.items() if not p.startswith(folder)}
                else:  # lfsFile / xet: never asked for, preupload says "regular" for every file
                    raise _HubError(400, f"this fake hub takes inline files only, got {key!r}")
            sha = hub._new_commit(repo_id, parent, files, header.get("summary", ""))
            hub.branches[repo_id][rev] = sha
        self._json(200, {"success": True, "commitOid": sha, "commitUrl": f"{hub.url}/{repo_id}/commit/{sha}",
                         "pullRequestUrl": None})

    def _branch(self, repo_id: str, branch: str, req: dict) -> None:
        hub = self.hub
        with hub.lock:
            start = hub.resolve(repo_id, req.get("startingPoint") or "main")
            if branch in hub.branches[repo_id]:
                raise _HubError(409, f"Reference refs/heads/{branch} already exists")
            hub.branches[repo_id][branch] = start
        self._json(200, {})

    def _resolve(self, repo_id: str, rev: str, filename: str, head: bool) -> None:
        hub = self.hub
        with hub.lock:
            sha = hub.resolve(repo_id, rev)
            files = hub.commits[sha]
            if filename not in files:
                raise _HubError(404, f"{filename} does not exist at {rev}", "EntryNotFound", sha)
            data = files[filename]
        self._send(200, data, {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(data)}"',
                               "Content-Type": "application/octet-stream",
                               "Content-Disposition": f'inline; filename="{quote(filename.split("/")[-1])}"'},
                   head=head)
