"""A local stand-in for the Hugging Face hub on 127.0.0.1, reached through HF_ENDPOINT.

It answers what huggingface_hub and bmclip ask for, as huggingface.co does for a gated dataset:
`/api/datasets/<id>/auth-check`, the paged `/api/datasets/<id>/tree/<revision>/<folder>` listing, and
`/datasets/<id>/resolve/<revision>/<path>`, which redirects (to another origin, like the hub's CDN)
to a URL that serves the bytes with HTTP Range support. Every hub route wants
`Authorization: Bearer <token>`: no token -> 401 GatedRepo, a token without access -> 403 GatedRepo,
an unknown token -> 401 "Invalid credentials". A file can be cut off mid-transfer to test retries, and
requests can be answered 429 with a Retry-After, as a hub that rate-limits does. Each request is logged
with the moment it arrived, so a test can see how long the client waited between two.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

PAGE_SIZE = 1000
AUTH_CHECK = re.compile(r"^/api/(datasets|models)/([^/]+)/([^/]+)/auth-check$")
TREE = re.compile(r"^/api/(datasets|models)/([^/]+)/([^/]+)/tree/([^/]+)(?:/(.*))?$")
RESOLVE = re.compile(r"^/(?:datasets/)?([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")
CDN = re.compile(r"^/cdn/([0-9a-f]+)$")


@dataclass
class Request:
    """One request the server received: method, path (without the query), query, and whether it carried a token."""

    method: str
    path: str
    query: dict[str, list[str]]
    authorized: bool
    range: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Cut:
    """Transfers of a file stop at byte `at` (the connection is closed) for the next `times` requests."""

    at: int
    times: int


@dataclass
class RateLimit:
    """The next `times` requests whose path contains `path` are answered 429 with `Retry-After: retry_after`."""

    path: str
    times: int
    retry_after: str


@dataclass
class FakeHub:
    """The server's state: repos (repo id -> revision -> path -> bytes), tokens, cuts, and a log of requests."""

    token: str = field(default_factory=lambda: "hf_bmclipTEST" + secrets.token_hex(12))
    denied_token: str = field(default_factory=lambda: "hf_noAccess" + secrets.token_hex(12))
    repos: dict[str, dict[str, dict[str, bytes]]] = field(default_factory=dict)
    cuts: dict[str, Cut] = field(default_factory=dict)
    rate_limits: list[RateLimit] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    tickets: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    port: int = 0
    page_size: int = PAGE_SIZE

    @property
    def endpoint(self) -> str:
        """The URL to put in HF_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}"

    def add_files(self, repo_id: str, files: dict[str, bytes], revision: str = "main") -> None:
        """Put files into a dataset repo at a revision."""
        self.repos.setdefault(repo_id, {}).setdefault(revision, {}).update(files)

    def add_folder(self, repo_id: str, folder_in_repo: str, local_folder: Path, revision: str = "main") -> None:
        """Put every file of a local folder (e.g. shards and sizes.json written by ShardWriter) into a repo folder."""
        self.add_files(repo_id, {f"{folder_in_repo}/{p.name}": p.read_bytes() for p in sorted(local_folder.iterdir()) if p.is_file()},
                       revision)

    def cut(self, path: str, at: int, times: int = 1) -> None:
        """Make the next `times` transfers of `path` stop at byte `at`."""
        self.cuts[path] = Cut(at, times)

    def rate_limit(self, path: str, times: int, retry_after: str = "1") -> None:
        """Answer the next `times` requests whose path contains `path` ('auth-check', 'tree', 'resolve/main/x.tar') with 429."""
        self.rate_limits.append(RateLimit(path, times, retry_after))

    def requests_to(self, kind: str) -> list[Request]:
        """Requests of one kind: 'auth-check', 'tree', 'resolve' or 'cdn'."""
        return [r for r in self.requests if (f"/{kind}/" in r.path or r.path.endswith(f"/{kind}"))]


def _error(handler: BaseHTTPRequestHandler, status: int, code: str | None, message: str,
           extra_headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    handler.send_response(status)
    for key, value in (extra_headers or {}).items():
        handler.send_header(key, value)
    if code:
        handler.send_header("X-Error-Code", code)
    handler.send_header("X-Error-Message", message)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _json(handler: BaseHTTPRequestHandler, data: object, extra_headers: dict[str, str] | None = None) -> None:
    body = json.dumps(data).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (extra_headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the request log is kept in hub.requests."""

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            hub.requests.append(Request("GET", split.path, parse_qs(split.query), "Authorization" in self.headers,
                                        self.headers.get("Range")))
            limit = next((limit for limit in hub.rate_limits if limit.path in split.path and limit.times > 0), None)
            if limit is not None:
                limit.times -= 1
                _error(self, 429, None, "You have been rate-limited; you can retry later.", {"Retry-After": limit.retry_after})
                return
            cdn = CDN.match(split.path)
            if cdn:
                self._serve_cdn(cdn.group(1))
                return
            repo_id = self._repo_id(split.path)
            if repo_id is None:
                _error(self, 404, None, "Not found")
                return
            if not self._allowed(repo_id):
                return
            if repo_id not in hub.repos:
                _error(self, 404, "RepoNotFound", "Repository not found")
                return
            if match := AUTH_CHECK.match(split.path):
                _json(self, {"ok": True})
            elif match := TREE.match(split.path):
                self._tree(repo_id, unquote(match.group(4)), unquote(match.group(5) or ""), split.query)
            elif match := RESOLVE.match(split.path):
                self._resolve(repo_id, unquote(match.group(3)), unquote(match.group(4)))

        def _repo_id(self, path: str) -> str | None:
            for pattern, owner, name in ((AUTH_CHECK, 2, 3), (TREE, 2, 3), (RESOLVE, 1, 2)):
                match = pattern.match(path)
                if match:
                    return f"{match.group(owner)}/{match.group(name)}"
            return None

        def _allowed(self, repo_id: str) -> bool:
            authorization = self.headers.get("Authorization", "")
            if not authorization:
                _error(self, 401, "GatedRepo", f"Access to dataset {repo_id} is restricted. You must have access to it "
                                              "and be authenticated to access it. Please log in.")
                return False
            token = authorization.removeprefix("Bearer ").strip()
            if token == hub.denied_token:
                _error(self, 403, "GatedRepo", f"Access to dataset {repo_id} is restricted and you are not in the authorized list.")
                return False
            if token != hub.token:
                _error(self, 401, None, "Invalid credentials in Authorization header")
                return False
            return True

        def _files(self, repo_id: str, revision: str) -> dict[str, bytes] | None:
            files = hub.repos[repo_id].get(revision)
            if files is None:
                _error(self, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return files

        def _tree(self, repo_id: str, revision: str, folder: str, query: str) -> None:
            files = self._files(repo_id, revision)
            if files is None:
                return
            prefix = f"{folder}/" if folder else ""
            children: dict[str, dict[str, object]] = {}
            for path, data in files.items():
                if not path.startswith(prefix):
                    continue
                head, slash, _ = path[len(prefix):].partition("/")
                entry_path = prefix + head
                children[entry_path] = ({"type": "directory", "oid": "0" * 40, "path": entry_path} if slash
                                        else {"type": "file", "oid": "1" * 40, "size": len(data), "path": entry_path})
            if folder and not children:
                _error(self, 404, "EntryNotFound", f"{folder} does not exist on {revision}")
                return
            entries = [children[key] for key in sorted(children)]
            start = int(parse_qs(query).get("cursor", ["0"])[0])
            page = entries[start:start + hub.page_size]
            headers = {}
            if start + hub.page_size < len(entries):
                next_url = f"{hub.endpoint}{urlsplit(self.path).path}?cursor={start + hub.page_size}"
                headers["Link"] = f'<{next_url}>; rel="next"'
            _json(self, page, headers)

        def _resolve(self, repo_id: str, revision: str, path: str) -> None:
            files = self._files(repo_id, revision)
            if files is None:
                return
            if path not in files:
                _error(self, 404, "EntryNotFound", f"{path} does not exist on {revision}")
                return
            ticket = secrets.token_hex(8)
            hub.tickets[ticket] = (repo_id, revision, path)
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{hub.port}/cdn/{ticket}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _serve_cdn(self, ticket: str) -> None:
            if ticket not in hub.tickets:
                _error(self, 403, None, "Bad signature")
                return
            repo_id, revision, path = hub.tickets[ticket]
            data = hub.repos[repo_id][revision][path]
            start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
            if start and start >= len(data):
                _error(self, 416, None, "Range not satisfiable")
                return
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = hub.cuts.get(path)
            if cut is not None and cut.times > 0:
                cut.times -= 1
                self.wfile.write(data[start:max(start, cut.at)])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(data[start:])

    return Handler


class _QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print clients hanging up (bmclip closes a shard after its first sample)."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class HubServer:
    """Runs a FakeHub on 127.0.0.1 in a background thread (use as a context manager)."""

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self._server = _QuietServer(("127.0.0.1", 0), _make_handler(hub))
        hub.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self.hub

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def hf_url(repo_id: str, path: str) -> str:
    """The hf:// URL of a file (or brace pattern) in a dataset repo."""
    return f"hf://datasets/{repo_id}/{path}"
