"""Checks of hf:// shard patterns against the hub, before launch: access, shards in the repo listing, sample counts.

A pattern costs one access check per repo and one listing per folder (paged by the hub at 1,000
files), never a request per shard, so BIOMEDICA's ~2,500 shards are checked in about a second.
Each request is asked again when the hub answers 429 or a server error, waiting as hub/backoff.py
says (the hub's Retry-After honoured); a hub that keeps rate-limiting is one line saying so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from biomedclip_cli.hub.backoff import RATE_LIMIT_FIX, RATE_LIMITED, get_with_retries, in_words, retry_settings, tries
from biomedclip_cli.hub.biomedica import known_samples
from biomedclip_cli.hub.paths import HubPath, has_token, hub_endpoint, is_hub_url, parse_hub_url, repo_page, request_headers, resolve_url
from biomedclip_cli.problems import Problem, ProblemFound, error

SIZE_FILES = ("sizes.json", "_info.json")
SIZE_FILE_MAX_BYTES = 16 << 20
REQUEST_TIMEOUT_S = 30.0


@dataclass
class HubSource:
    """What the hub says about one hf:// '::' source: shards not in the repo, the sample count if known, and problems."""

    missing: list[str] = field(default_factory=list)
    num_samples: int | None = None
    problems: list[Problem] = field(default_factory=list)


def _access_problem(exc: Exception, path: HubPath, option: str) -> Problem:
    """One line for a refused or failed hub request, saying what to do about it."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError

    kind = "dataset" if path.repo_type == "dataset" else "model repo"
    page = repo_page(path)
    login = "log in with `hf auth login` (or set HF_TOKEN)"
    if isinstance(exc, GatedRepoError):
        if not has_token():
            return error(option, f"{kind} '{path.repo_id}' is gated and no Hugging Face token was found",
                         f"accept its terms at {page}, then {login}")
        return error(option, f"your Hugging Face token has no access to the gated {kind} '{path.repo_id}'",
                     f"accept its terms at {page} with the account of that token, then {login} again")
    if isinstance(exc, RevisionNotFoundError):
        return error("--revision", f"revision '{path.revision}' does not exist in {kind} '{path.repo_id}'",
                     "pass a branch, tag or commit of the repo")
    if isinstance(exc, RepositoryNotFoundError):
        private = "" if has_token() else "; if it is private, " + login
        return error(option, f"{kind} '{path.repo_id}' does not exist on {hub_endpoint()} or your token cannot see it",
                     f"check the owner/name in the hf:// URL{private}")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code == 401:
        return error(option, "the Hugging Face hub rejected your token (HF_TOKEN or the saved login)",
                     f"create a read token at {hub_endpoint()}/settings/tokens and {login}")
    if isinstance(exc, OfflineModeIsEnabled):
        return error(option, "hf:// data needs the hub, but HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE, or use local shards")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code == RATE_LIMITED:
        return error(option, f"the hub is rate-limiting (HTTP 429) requests for {kind} '{path.repo_id}' and still was after "
                             f"{tries(retry_settings()[0] + 1)}", RATE_LIMIT_FIX)
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return error(option, f"the hub answered {exc.response.status_code} for {kind} '{path.repo_id}'", "try again later")
    return error(option, f"cannot reach the Hugging Face hub at {hub_endpoint()} ({in_words(exc)})",
                 "check the network connection, or HF_ENDPOINT if you use a mirror")


@contextmanager
def _hub_problems(path: HubPath, option: str) -> Iterator[None]:
    """Turn an exception from a hub request into ProblemFound with the line that explains it."""
    try:
        yield
    except ProblemFound:
        raise
    except Exception as exc:  # network errors come from whichever HTTP library huggingface_hub uses
        raise ProblemFound(_access_problem(exc, path, option)) from None


def _hub_get(url: str) -> Any:
    """The hub's answer to a GET, asked again while it rate-limits or fails (hub/backoff.py); an error status raised as in HfApi."""
    from huggingface_hub.utils import hf_raise_for_status

    response = get_with_retries(url, request_headers(), REQUEST_TIMEOUT_S)
    hf_raise_for_status(response)
    return response


def _check_access(path: HubPath, option: str) -> None:
    """What HfApi.auth_check asks (huggingface_hub asks it once, with no retry)."""
    with _hub_problems(path, option):
        _hub_get(f"{hub_endpoint()}/api/{path.repo_type}s/{path.repo_id}/auth-check")


def _list_folder(path: HubPath, option: str) -> set[str]:
    """The names of the files in the folder of `path` at its revision (one listing, paged by the hub).

    The request is HfApi.list_repo_tree's; it is made here because huggingface_hub's own retries
    print lines of their own and do not cap the hub's Retry-After.
    """
    from huggingface_hub.errors import RemoteEntryNotFoundError

    folder = "/" + quote(path.folder, safe="") if path.folder else ""
    url: str | None = (f"{hub_endpoint()}/api/{path.repo_type}s/{path.repo_id}/tree/{quote(path.revision or 'main', safe='')}"
                       f"{folder}?recursive=false&expand=false")
    names: set[str] = set()
    with _hub_problems(path, option):
        try:
            while url:
                response = _hub_get(url)
                names |= {PurePosixPath(entry["path"]).name for entry in response.json() if entry.get("type") == "file"}
                url = response.links.get("next", {}).get("url")
        except RemoteEntryNotFoundError:
            return set()
    return names


def read_small_file(path: HubPath, option: str) -> bytes:
    """The bytes of a small repo file (a sizes file), read into memory (nothing is cached on disk)."""
    with _hub_problems(path, option):
        return bytes(_hub_get(resolve_url(path)).content[:SIZE_FILE_MAX_BYTES])


def shard_sizes(text: bytes) -> dict[str, int]:
    """Samples per shard name from a sizes file: open_clip's sizes.json ({name: count}) or a wids-style _info.json."""
    data = json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("shardlist"), list):
        return {PurePosixPath(str(shard["url"])).name: int(shard["nsamples"]) for shard in data["shardlist"]}
    if isinstance(data, dict):
        return {str(name): int(count) for name, count in data.items()}
    raise ValueError("not a mapping of shard names to sample counts")


def _folder_samples(folder: HubPath, files: set[str], names: list[str], option: str) -> int | None:
    """Samples in the named shards of one folder, from the first sizes file the folder has; None when it has none."""
    for size_file in SIZE_FILES:
        if size_file not in files:
            continue
        try:
            sizes = shard_sizes(read_small_file(HubPath(folder.repo_type, folder.repo_id, folder.revision,
                                                        f"{folder.folder}/{size_file}".lstrip("/")), option))
            return sum(sizes[name] for name in names)
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _paths(urls: list[str], revision: str | None, option: str, example: str = "<folder>/<shard>.tar") -> list[HubPath]:
    paths = []
    for shard in urls:
        try:
            path = parse_hub_url(shard)
        except ValueError as exc:
            raise ProblemFound(error(option, str(exc), f"write hf://datasets/<owner>/<name>/{example}")) from None
        if revision and path.revision and path.revision != revision:
            raise ProblemFound(error("--revision", f"'{revision}' differs from the revision '{path.revision}' written in '{shard}'",
                                     "give the revision once, in the URL or with --revision"))
        paths.append(path.with_revision(path.revision or revision))
    return paths


def check_hub_file_urls(urls: list[str], revision: str | None, option: str) -> list[Problem]:
    """Problems with how hf:// URLs of files (a CSV) are written: not hub URLs, or a revision other than --revision; no request is made."""
    try:
        _paths(urls, revision, option, example="<path in the repo>.csv")
    except ProblemFound as found:
        return [found.problem]
    return []


def check_hub_access(data: str, option: str) -> list[Problem]:
    """Problems reaching the repos that the hf:// sources of `data` name (revisions as written in the URLs): one request per repo.

    Each rank runs this before training: a rank without a usable token would otherwise skip every
    shard it is given, one warning at a time, and never train.
    """
    repos = {(p.repo_type, p.repo_id): p for p in (parse_hub_url(s) for s in data.split("::") if is_hub_url(s))}
    try:
        for path in repos.values():
            _check_access(path, option)
    except ProblemFound as found:
        return [found.problem]
    return []


def inspect_hub_source(source: str, shards: list[str], revision: str | None, option: str) -> HubSource:
    """Check one expanded hf:// source against the hub: access, which shards the repo lacks, and how many samples it has.

    The sample count comes from a sizes.json or _info.json in the shards' folder, else from the
    known size of a BIOMEDICA set, else it is None (and --train-num-samples is needed).
    """
    found = HubSource()
    try:
        paths = _paths(shards, revision, option)
        for repo in {(p.repo_type, p.repo_id, p.revision): p for p in paths}.values():
            _check_access(repo, option)
        by_folder: dict[tuple[str, str, str | None, str], list[HubPath]] = {}
        for path in paths:
            by_folder.setdefault((path.repo_type, path.repo_id, path.revision, path.folder), []).append(path)
        counts: list[int | None] = []
        for in_folder in by_folder.values():
            files = _list_folder(in_folder[0], option)
            found.missing += [p.url() for p in in_folder if p.name not in files]
            counts.append(_folder_samples(in_folder[0], files, [p.name for p in in_folder], option))
    except ProblemFound as problem:
        found.problems.append(problem.problem)
        return found
    found.num_samples = sum(c for c in counts if c is not None) if None not in counts else known_samples(source)
    return found


@lru_cache(maxsize=64)
def _folder_sizes(repo_type: str, repo_id: str, revision: str | None, folder: str) -> dict[str, int] | None:
    for size_file in SIZE_FILES:
        path = HubPath(repo_type, repo_id, revision, f"{folder}/{size_file}".lstrip("/"))
        try:
            response = get_with_retries(resolve_url(path), request_headers(), REQUEST_TIMEOUT_S, retries=1)
            if response.status_code == 200:
                return shard_sizes(response.content[:SIZE_FILE_MAX_BYTES])
        except Exception:  # no answer, or no usable file: the count is unknown, nothing more
            continue
    return None


def shard_sample_count(url: str) -> int | None:
    """The samples of one hf:// shard, from the sizes.json or _info.json beside it; None when neither is there or readable.

    Asked when a shard is given up (to say how many samples were lost), once per folder and process,
    with one retry: a hub that does not answer leaves the count unknown rather than holding training up.
    """
    try:
        path = parse_hub_url(url)
    except ValueError:
        return None
    sizes = _folder_sizes(path.repo_type, path.repo_id, path.revision, path.folder)
    return None if sizes is None else sizes.get(path.name)
