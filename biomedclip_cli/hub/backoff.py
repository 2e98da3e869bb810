"""How long bmclip waits before asking the hub again, and the words for a hub that keeps refusing.

A failed request waits BACKOFF_S, then twice that after each further failure in a row (at most
MAX_BACKOFF_S); when the hub's answer says how long to wait (`Retry-After`, as seconds or as an HTTP
date, on any status worth asking again: 408, 429, 5xx; or, on a 429, huggingface_hub's reading of the
`RateLimit` header), bmclip waits at least that. Every wait is capped at MAX_WAIT_S (60 s: five
retries then stay within torch's 10-minute collective timeout, which a rank stalled on its data
would otherwise run into) and gets up to JITTER of itself added, so that the data-loading processes of
every rank do not all ask again in the same instant. A hub asking for more than MAX_WAIT_S is asked
again after MAX_WAIT_S, and that attempt counts as one more failure.

huggingface_hub's `http_backoff` / `http_stream_backoff` retry a request, but not a transfer that
breaks half-way (what Range resumption needs), read Retry-After as seconds only, do not cap it and
print their own lines; so bmclip keeps its own loop and uses huggingface_hub's `RateLimit` parser.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import os
import random
import time
from collections.abc import Mapping
from typing import Any

RETRIES = 5
BACKOFF_S = 1.0
RETRIES_VARIABLE = "BMCLIP_HUB_RETRIES"
BACKOFF_VARIABLE = "BMCLIP_HUB_BACKOFF_S"
MAX_BACKOFF_S = 16.0
MAX_WAIT_S = 60.0
JITTER = 0.1
RATE_LIMITED = 429
RETRYABLE_STATUS = (408, RATE_LIMITED, 500, 502, 503, 504)
STATUS_WORDS = {408: "request timeout", RATE_LIMITED: "rate limit", 500: "server error", 502: "bad gateway",
                503: "service unavailable", 504: "gateway timeout"}
RATE_LIMIT_FIX = ("wait a few minutes and run it again; logged-in accounts (`hf auth login`, or HF_TOKEN) get higher "
                  "limits, and PRO or Enterprise accounts higher still")

logger = logging.getLogger(__name__)


def retry_settings() -> tuple[int, float]:
    """Retries per request or shard, and the first wait in seconds: BMCLIP_HUB_RETRIES / BMCLIP_HUB_BACKOFF_S if valid, else defaults."""
    try:
        retries = max(0, int(os.environ.get(RETRIES_VARIABLE, RETRIES)))
        backoff_s = max(0.0, float(os.environ.get(BACKOFF_VARIABLE, BACKOFF_S)))
    except ValueError:
        return RETRIES, BACKOFF_S
    return retries, backoff_s


def retry_after_s(status: int, headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the hub asked to wait before the next request (None when it did not say).

    `Retry-After` as delta-seconds ("120") or an HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT", counted
    from `now`, default the clock); on a 429 without it, the reset time of an exhausted `RateLimit` header.
    """
    value = next((headers[key] for key in headers if key.lower() == "retry-after"), "").strip()
    if value:
        if value.isdigit():
            return float(value)
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            moment = None
        if moment is not None:
            moment = moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
            return max(0.0, moment.timestamp() - (time.time() if now is None else now))
    if status == RATE_LIMITED:
        from huggingface_hub.utils import parse_ratelimit_headers

        limit = parse_ratelimit_headers(headers)
        if limit is not None and limit.remaining == 0:
            return float(limit.reset_in_seconds)
    return None


def wait_s(failures: int, backoff_s: float, retry_after: float | None = None) -> float:
    """The wait before the next try after `failures` failures in a row (see the module docstring): at most MAX_WAIT_S plus JITTER."""
    wait = min(max(backoff_s * 2 ** (failures - 1), 0.0), MAX_BACKOFF_S)
    wait = min(max(wait, retry_after or 0.0), MAX_WAIT_S)
    return wait * (1 + random.uniform(0, JITTER))


def tries(count: int) -> str:
    """'1 try', '3 tries'."""
    return f"{count} {'try' if count == 1 else 'tries'}"


def status_words(status: int, retry_after: float | None = None) -> str:
    """What a retryable answer means, in words: 'the hub is rate-limiting (HTTP 429) and asked to wait 5 s'."""
    asked = f" and asked to wait {retry_after:g} s" if retry_after is not None else ""
    if status == RATE_LIMITED:
        return f"the hub is rate-limiting (HTTP {status}){asked}"
    return f"the hub answered {status} ({STATUS_WORDS.get(status, 'try again')}){asked}"


class RetryableAnswer(OSError):
    """The hub answered with a status worth asking again after a pause (a rate limit, a server error); the message is in words."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(status_words(status, retry_after))
        self.status, self.retry_after = status, retry_after


def in_words(exc: BaseException) -> str:
    """The first line of what went wrong, for a message a person reads (never the exception's class name)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else "the connection failed with no message"


def get_with_retries(url: str, headers: dict[str, str], timeout_s: float, retries: int | None = None,
                     backoff_s: float | None = None) -> Any:
    """GET `url` (redirects followed), asking again after a retryable status as the module docstring says; the last response.

    Network errors are raised at once (a hub that cannot be reached is reported, not waited for);
    the caller turns the response's status into an error (huggingface_hub's `hf_raise_for_status`).
    """
    from huggingface_hub.utils import get_session

    default_retries, default_backoff = retry_settings()
    retries = default_retries if retries is None else retries
    backoff_s = default_backoff if backoff_s is None else backoff_s
    failures = 0
    while True:
        response = get_session().get(url, headers=headers, timeout=timeout_s, follow_redirects=True)
        if response.status_code not in RETRYABLE_STATUS or failures >= retries:
            return response
        failures += 1
        asked = retry_after_s(response.status_code, response.headers)
        wait = wait_s(failures, backoff_s, asked)
        logger.warning("bmclip: %s; asking again in %.1f s (retry %d of %d)", status_words(response.status_code, asked),
                       wait, failures, retries)
        response.close()
        time.sleep(wait)
