"""Streaming hf:// shards for webdataset: the token in a header, and reconnection where a dropped transfer stopped.

`register_hf_scheme()` teaches the installed webdataset to open `hf://` URLs (webdataset's own
http handler runs curl with the URL on its command line, which is why the seed's fork put the token
there). Each rank's worker calls it before open_clip builds its data pipeline.

A shard whose connection drops is asked for again from the byte where it stopped (an HTTP Range
request), waiting longer after each failure; after RETRIES failures in a row the shard is given up
with a warning naming it, and open_clip's pipeline goes on with the next shard.
"""

from __future__ import annotations

import io
import logging
import os
import time
from typing import Any, BinaryIO

from biomedclip_cli.hub.paths import SCHEME, HubPath, is_hub_url, parse_hub_url, request_headers, resolve_url

RETRIES = 5
BACKOFF_S = 1.0
RETRIES_VARIABLE = "BMCLIP_HUB_RETRIES"
BACKOFF_VARIABLE = "BMCLIP_HUB_BACKOFF_S"
MAX_BACKOFF_S = 16.0
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0
RETRYABLE_STATUS = (408, 429, 500, 502, 503, 504)
RANGE_NOT_SATISFIABLE = 416

logger = logging.getLogger(__name__)


class HubFileError(OSError):
    """The hub refused a file (no access, not found): asking again would not help."""


class ShardGivenUp(OSError):
    """A file whose transfer kept failing after every retry."""


class _RetryableStatus(Exception):
    """The hub answered with a status worth asking again after a pause (rate limit, server error)."""


def _refusal(name: str, status: int, error_code: str | None) -> HubFileError:
    reason = {401: "needs a token with access", 403: "is not readable with this token", 404: "does not exist"}.get(status, "was refused")
    detail = f" ({error_code})" if error_code else ""
    hint = "; accept the dataset's terms on its hub page and log in with `hf auth login`" if status in (401, 403) else ""
    return HubFileError(f"{name} {reason}: the hub answered {status}{detail}{hint}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class HubFileStream(io.RawIOBase):
    """A readable stream of one file on the hub that reconnects where it stopped when the transfer fails.

    `name` is the hf:// URL (what logs and errors show); the token only ever travels in a request header.
    """

    def __init__(self, path: HubPath, retries: int = RETRIES, backoff_s: float = BACKOFF_S) -> None:
        super().__init__()
        self.name = path.url()
        self.retries = retries
        self.backoff_s = backoff_s
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
            raise _RetryableStatus(f"the hub answered {status}")
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
            self._given_up = ShardGivenUp(f"skipping {self.name}: reading it failed {self._failures} times in a row, "
                                          f"last at byte {self._received:,} ({_describe(exc)})")
            logger.warning("bmclip: %s", self._given_up)
            raise self._given_up from exc
        wait = min(self.backoff_s * 2 ** (self._failures - 1), MAX_BACKOFF_S)
        logger.warning("bmclip: reading %s failed at byte %s (%s); retry %d of %d in %.1f s",
                       self.name, f"{self._received:,}", _describe(exc), self._failures, self.retries, wait)
        time.sleep(wait)

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response, self._chunks = None, None

    def close(self) -> None:
        """Close the connection (if one is open) and the stream."""
        self._close_response()
        super().close()


def retry_settings() -> tuple[int, float]:
    """Retries per shard and the first wait in seconds: BMCLIP_HUB_RETRIES / BMCLIP_HUB_BACKOFF_S when valid, else the defaults."""
    try:
        retries = max(0, int(os.environ.get(RETRIES_VARIABLE, RETRIES)))
        backoff_s = max(0.0, float(os.environ.get(BACKOFF_VARIABLE, BACKOFF_S)))
    except ValueError:
        return RETRIES, BACKOFF_S
    return retries, backoff_s


def open_hub_url(url: str, mode: str = "rb", bufsize: int = CHUNK_BYTES, **_: object) -> BinaryIO:
    """webdataset's gopen handler for hf:// URLs: a buffered, reconnecting stream of the file (reading only)."""
    if mode != "rb":
        raise ValueError(f"{url}: {SCHEME} files can only be read")
    retries, backoff_s = retry_settings()
    return io.BufferedReader(HubFileStream(parse_hub_url(url), retries, backoff_s), buffer_size=max(bufsize, CHUNK_BYTES))


def open_shard(shard: str, retries: int = RETRIES) -> BinaryIO:
    """A shard opened for reading: a local path, or an hf:// URL streamed from the hub."""
    if is_hub_url(shard):
        return io.BufferedReader(HubFileStream(parse_hub_url(shard), retries=retries), buffer_size=CHUNK_BYTES)
    return open(shard, "rb")


def register_hf_scheme() -> None:
    """Make webdataset (as installed, unforked) open hf:// URLs with `open_hub_url`, in this process and its forks."""
    from webdataset.gopen import gopen_schemes

    gopen_schemes["hf"] = open_hub_url
