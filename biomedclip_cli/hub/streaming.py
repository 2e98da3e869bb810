"""Streaming hf:// shards for webdataset: the token in a header, reconnection where a dropped transfer stopped, give-ups remembered.

`register_hf_scheme(given_up)` teaches the installed webdataset to open `hf://` URLs (webdataset's own
http handler runs curl with the URL on its command line, which is why the seed's fork put the token
there). Each rank's worker calls it before open_clip builds its data pipeline, naming the folder where
given-up shards are recorded.

A shard whose connection drops is asked for again from the byte where it stopped (an HTTP Range
request), waiting longer after each failure, and at least as long as the hub's Retry-After asks
(hub/backoff.py: capped at 60 s, with jitter). After RETRIES failures in a row the shard is given up:
one warning naming it, what it delivered and what was lost (shown on rank 0's console), a record in
the given-up folder (hub/given_up.py), and open_clip's pipeline goes on with the next shard. A shard
given up is not asked for again in that run, by any process that reads the same folder: this
epoch's data-loading workers, the next epoch's, the other ranks.
"""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

from biomedclip_cli.console import TO_CONSOLE
from biomedclip_cli.hub.backoff import (
    BACKOFF_S,
    RATE_LIMIT_FIX,
    RATE_LIMITED,
    RETRIES,
    RETRYABLE_STATUS,
    RetryableAnswer,
    in_words,
    retry_after_s,
    retry_settings,
    tries,
    wait_s,
)
from biomedclip_cli.hub.given_up import GivenUpShard, GivenUpShards
from biomedclip_cli.hub.paths import SCHEME, HubPath, is_hub_url, parse_hub_url, request_headers, resolve_url
from biomedclip_cli.hub.tar_progress import BLOCK, TarSamples

__all__ = ["BACKOFF_S", "RETRIES", "HubFileError", "HubFileStream", "ShardGivenUp", "open_hub_url", "open_shard",
           "register_hf_scheme", "retry_settings"]

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0
RANGE_NOT_SATISFIABLE = 416
EMPTY_TAR = bytes(2 * BLOCK)  # what webdataset reads for a shard given up earlier: an archive of no member
NETWORK_FIX = "check the network connection (or HF_ENDPOINT if you use a mirror) and try again"

logger = logging.getLogger(__name__)
_given_up_folder: Path | None = None


class HubFileError(OSError):
    """The hub refused a file (no access, not found): asking again would not help."""


class ShardGivenUp(OSError):
    """A file whose transfer kept failing after every retry; `record` says how, `fix` what to do about it (one line each)."""

    def __init__(self, record: GivenUpShard) -> None:
        if record.rate_limited:
            text = f"the hub is rate-limiting (HTTP 429) the reading of {record.url} and still was after {tries(record.failures)}"
        else:
            text = record.failure().replace("reading it", f"reading {record.url}", 1)
        super().__init__(text)
        self.record = record
        self.fix = RATE_LIMIT_FIX if record.rate_limited else NETWORK_FIX


def _refusal(name: str, status: int, error_code: str | None) -> HubFileError:
    reason = {401: "needs a token with access", 403: "is not readable with this token", 404: "does not exist"}.get(status, "was refused")
    detail = f" ({error_code})" if error_code else ""
    hint = "; accept the dataset's terms on its hub page and log in with `hf auth login`" if status in (401, 403) else ""
    return HubFileError(f"{name} {reason}: the hub answered {status}{detail}{hint}")


def given_up_shards() -> GivenUpShards | None:
    """Where this process records and looks up given-up shards (set by `register_hf_scheme`); None: nowhere, nothing is remembered."""
    return GivenUpShards(_given_up_folder) if _given_up_folder is not None else None


class HubFileStream(io.RawIOBase):
    """A readable stream of one file on the hub that reconnects where it stopped when the transfer fails.

    `name` is the hf:// URL (what logs and errors show); the token only ever travels in a request header.
    Given up, it raises ShardGivenUp; or, with `ends_when_given_up`, it ends there, as a file cut short
    would: a reader (webdataset's tarfile) then keeps every member received before the failure, which
    a raise would lose with the partial record it was reading, and the record and warning say the rest.
    """

    def __init__(self, path: HubPath, retries: int = RETRIES, backoff_s: float = BACKOFF_S, ends_when_given_up: bool = False) -> None:
        super().__init__()
        self.name = path.url()
        self.retries = retries
        self.backoff_s = backoff_s
        self.ends_when_given_up = ends_when_given_up
        self._url = resolve_url(path)
        self._response: Any = None
        self._chunks: Any = None
        self._pending = memoryview(b"")
        self._received = 0
        self._discard = 0
        self._size: int | None = None
        self._failures = 0
        self._finished = False
        self._given_up: OSError | None = None
        self._samples = TarSamples()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` with the next bytes of the file; 0 at its end."""
        if self._given_up is not None:
            raise self._given_up
        while not self._pending:
            chunk = self._next_chunk()
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def _next_chunk(self) -> bytes | None:
        while not self._finished:
            try:
                if self._chunks is None:
                    self._connect()
                    continue
                chunk = next(self._chunks, None)
                if chunk is None:
                    self._end_of_response()
                    continue
                chunk = self._after_discard(chunk)
                if chunk:
                    self._samples.feed(chunk)
                    self._received += len(chunk)
                    self._failures = 0
                    return chunk
            except HubFileError:
                self._close_response()
                raise
            except Exception as exc:  # any failed transfer (network, protocol, timeout, server error) is asked for again
                self._close_response()
                self._wait_or_give_up(exc)
        return None

    def _connect(self) -> None:
        from huggingface_hub.utils import get_session

        headers = {**request_headers(), "Accept-Encoding": "identity"}
        if self._received:
            headers["Range"] = f"bytes={self._received}-"
        session = get_session()
        request = session.build_request("GET", self._url, headers=headers, timeout=TIMEOUT_S)
        response = session.send(request, stream=True, follow_redirects=True)
        status = response.status_code
        if status == RANGE_NOT_SATISFIABLE and self._received:
            response.close()
            self._finished = True
            return
        if status in RETRYABLE_STATUS:
            response.close()
            raise RetryableAnswer(status, retry_after_s(status, response.headers))
        if status not in (200, 206):
            error_code = response.headers.get("X-Error-Code")
            response.close()
            raise _refusal(self.name, status, error_code)
        self._discard = self._received if status == 200 else 0
        self._size = self._total_size(response) if self._size is None else self._size
        self._response = response
        self._chunks = response.iter_raw()

    @staticmethod
    def _total_size(response: Any) -> int | None:
        content_range = response.headers.get("Content-Range", "")
        if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
            return int(content_range.rsplit("/", 1)[1])
        length = response.headers.get("Content-Length", "")
        return int(length) if response.status_code == 200 and length.isdigit() else None

    def _after_discard(self, chunk: bytes) -> bytes:
        """Drop the bytes already received when a server ignored the Range header and sent the file from its start."""
        if not self._discard:
            return chunk
        dropped = min(self._discard, len(chunk))
        self._discard -= dropped
        return chunk[dropped:]

    def _end_of_response(self) -> None:
        self._close_response()
        if self._size is not None and self._received < self._size:
            raise ConnectionError(f"the transfer ended at byte {self._received:,} of {self._size:,}")
        self._finished = True

    def _wait_or_give_up(self, exc: Exception) -> None:
        self._failures += 1
        if self._failures > self.retries:
            self._give_up(exc)
            return
        wait = wait_s(self._failures, self.backoff_s, exc.retry_after if isinstance(exc, RetryableAnswer) else None)
        logger.warning("bmclip: reading %s failed at byte %s (%s); retry %d of %d in %.1f s",
                       self.name, f"{self._received:,}", in_words(exc), self._failures, self.retries, wait)
        time.sleep(wait)

    def _give_up(self, exc: Exception) -> None:
        """Raise ShardGivenUp, or end the stream; with a given-up folder, record the shard there and warn once (on rank 0's console too)."""
        from biomedclip_cli.hub.remote_shards import shard_sample_count

        registry = given_up_shards()
        record = GivenUpShard(url=self.name, rank=int(os.environ.get("RANK", "0")), failures=self._failures, at_byte=self._received,
                              size=self._size, cause=in_words(exc),
                              rate_limited=isinstance(exc, RetryableAnswer) and exc.status == RATE_LIMITED,
                              samples_read=self._samples.delivered(), cut_sample=self._samples.current,
                              samples_in_shard=shard_sample_count(self.name) if registry is not None else None)
        if registry is not None and registry.find(self.name) is None:  # another process may have given it up meanwhile, and warned
            registry.add(record)
            logger.warning("bmclip: warning: skipping %s for the rest of the run: %s", self.name, record.reason(),
                           extra={TO_CONSOLE: True})
        elif registry is None and self.ends_when_given_up:
            logger.warning("bmclip: skipping %s: %s; %s samples read", self.name, record.failure(), f"{record.samples_read:,}")
        if self.ends_when_given_up:
            self._finished = True
            return
        self._given_up = ShardGivenUp(record)  # the caller says what it means (preflight: one error line)
        raise self._given_up from exc

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response, self._chunks = None, None

    def close(self) -> None:
        """Close the connection (if one is open) and the stream."""
        self._close_response()
        super().close()


def open_hub_url(url: str, mode: str = "rb", bufsize: int = CHUNK_BYTES, **_: object) -> BinaryIO:
    """webdataset's gopen handler for hf:// URLs: a buffered, reconnecting stream of the file (reading only).

    A shard given up now ends where its transfer failed (see HubFileStream); one given up earlier in the
    run (see `register_hf_scheme`) is not asked for: webdataset reads an archive with no member for it.
    Either way webdataset goes on with the next shard.
    """
    if mode != "rb":
        raise ValueError(f"{url}: {SCHEME} files can only be read")
    registry = given_up_shards()
    if registry is not None and registry.find(url) is not None:
        logger.debug("bmclip: not reading %s: it was given up earlier in this run", url)  # drawn again and again when resampled
        return io.BufferedReader(io.BytesIO(EMPTY_TAR))
    retries, backoff_s = retry_settings()
    stream = HubFileStream(parse_hub_url(url), retries, backoff_s, ends_when_given_up=True)
    return io.BufferedReader(stream, buffer_size=max(bufsize, CHUNK_BYTES))


def open_shard(shard: str, retries: int | None = None) -> BinaryIO:
    """A shard opened for reading: a local path, or an hf:// URL streamed from the hub (BMCLIP_HUB_RETRIES unless `retries`).

    An hf:// shard given up earlier in the run raises ShardGivenUp at once.
    """
    if is_hub_url(shard):
        registry = given_up_shards()
        found = registry.find(shard) if registry is not None else None
        if found is not None:
            raise ShardGivenUp(found)
        default_retries, backoff_s = retry_settings()
        stream = HubFileStream(parse_hub_url(shard), retries=default_retries if retries is None else retries, backoff_s=backoff_s)
        return io.BufferedReader(stream, buffer_size=CHUNK_BYTES)
    return open(shard, "rb")


def register_hf_scheme(given_up: Path | None = None) -> None:
    """Make webdataset (as installed, unforked) open hf:// URLs with `open_hub_url`, in this process and its forks.

    `given_up` is the folder where shards given up are recorded and looked up (hub/given_up.py),
    so that none is asked for again in the run; None (the default) remembers nothing.
    """
    from webdataset.gopen import gopen_schemes

    global _given_up_folder
    _given_up_folder = given_up
    gopen_schemes["hf"] = open_hub_url
