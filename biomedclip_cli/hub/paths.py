"""hf:// URLs of files in Hugging Face hub repos, what a request for them needs (endpoint, token, revision),
and the local cache of hub files.

`hf://datasets/<owner>/<name>[@<revision>]/<path>` is the form huggingface_hub's HfFileSystem reads;
a path without `datasets/` names a model repo. The token is never part of a URL: it is read at
request time from HF_TOKEN or the login saved by `hf auth login` and sent in a header.
Importing this module is cheap; huggingface_hub is imported by the functions that call the hub.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote

SCHEME = "hf://"
REPO_TYPE_PREFIXES = {"datasets/": "dataset", "models/": "model"}
URL_PREFIXES = {"dataset": "datasets/", "model": ""}
DEFAULT_ENDPOINT = "https://huggingface.co"
SPECIAL_REFS = re.compile(r"refs/(?:convert/[\w.-]+|pr/\d+)(?=/)")


def is_hub_url(url: str) -> bool:
    """Whether a data source or shard names a file on the hub (hf://)."""
    return url.startswith(SCHEME)


@dataclass(frozen=True)
class HubPath:
    """One file (or brace pattern) in a hub repo: repo type and id, revision (None: the default branch) and path in the repo."""

    repo_type: str
    repo_id: str
    revision: str | None
    path: str

    def url(self) -> str:
        """The hf:// form, with the revision (URL-quoted, so 'refs/pr/1' stays one segment) when one is set."""
        at = f"@{quote(self.revision, safe='')}" if self.revision else ""
        return f"{SCHEME}{URL_PREFIXES[self.repo_type]}{self.repo_id}{at}/{self.path}"

    def with_revision(self, revision: str | None) -> HubPath:
        """The same path at another revision."""
        return replace(self, revision=revision)

    @property
    def folder(self) -> str:
        """The folder of the path in the repo ('' at the top)."""
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def name(self) -> str:
        """The file name without its folder."""
        return self.path.rsplit("/", 1)[-1]


def parse_hub_url(url: str) -> HubPath:
    """Split an hf:// URL into its parts; a URL without an owner, repo name and path raises ValueError."""
    if not is_hub_url(url):
        raise ValueError(f"'{url}' does not start with {SCHEME}")
    rest = url[len(SCHEME):]
    repo_type = "model"
    for prefix, kind in REPO_TYPE_PREFIXES.items():
        if rest.startswith(prefix):
            repo_type, rest = kind, rest[len(prefix):]
            break
    owner, _, rest = rest.partition("/")
    revision = None
    name, at, rest = rest.partition("@")
    if at:
        special = SPECIAL_REFS.match(rest)
        revision, path = (special.group(0), rest[special.end() + 1:]) if special else rest.partition("/")[::2]
        revision = unquote(revision)
    else:
        name, _, path = name.partition("/")
    if not (owner and name and path) or (at and not revision):
        raise ValueError(f"'{url}' is not {SCHEME}datasets/<owner>/<name>[@<revision>]/<path in the repo>")
    return HubPath(repo_type, f"{owner}/{name}", revision, path)


def pin_revision(data: str, revision: str | None) -> str:
    """The data option with `revision` written into every '::' source that is an hf:// URL without one.

    This is how a revision reaches the ranks: the URLs open_clip hands to webdataset carry it.
    """
    if not revision:
        return data
    pinned = []
    for source in data.split("::"):
        if is_hub_url(source):
            path = parse_hub_url(source)
            source = path.with_revision(path.revision or revision).url()
        pinned.append(source)
    return "::".join(pinned)


def hub_endpoint() -> str:
    """The hub's base URL: HF_ENDPOINT when set (a mirror, or a test server), else huggingface.co.

    Read at call time, not at import, so a changed environment is honoured.
    """
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def repo_page(path: HubPath) -> str:
    """The repo's web page, where users accept a gated dataset's terms."""
    return f"{hub_endpoint()}/{URL_PREFIXES[path.repo_type]}{path.repo_id}"


def resolve_url(path: HubPath) -> str:
    """The `resolve` URL that serves the file's bytes (the hub redirects it to its CDN)."""
    from huggingface_hub import hf_hub_url

    return hf_hub_url(path.repo_id, path.path, repo_type=path.repo_type, revision=path.revision, endpoint=hub_endpoint())


def request_headers() -> dict[str, str]:
    """Headers for a hub request: user agent, and the token (HF_TOKEN or the saved login) as a bearer header."""
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers()


def has_token() -> bool:
    """Whether a token is available (HF_TOKEN or the login saved by `hf auth login`)."""
    from huggingface_hub import get_token

    return get_token() is not None


def cached_hub_file(repo: str, filename: str) -> Path | None:
    """The copy of a model repo's file at `main` in the Hugging Face cache (HF_HUB_CACHE / HF_HOME honoured), or None; no network.

    huggingface_hub's own cache lookup follows refs/main to its snapshot, as a download would.
    """
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, filename)
    except ValueError:  # not a valid repo id, so nothing of it can be cached
        return None
    return Path(found) if isinstance(found, str) else None
