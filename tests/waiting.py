"""Waiting in tests for something to happen: a file to appear, a line to be printed, a job to reach a state.

Every wait synchronises on such an event, checked again and again until it holds or a deadline
passes. The poll interval only spaces the checks out; it is not a wait for time, and no test
relies on anything having happened after some number of seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(ready: Callable[[], T], what: str, timeout: float = 240, poll: float = 0.05) -> T:
    """Poll `ready` until it returns something truthy (returned), failing the test with `what` after `timeout` seconds.

    `ready` is called at least once, and once more after the deadline has passed before the test fails.
    An exception from `ready` (an assertion that a process is still alive, say) ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        late = time.monotonic() >= deadline
        result = ready()
        if result:
            return result
        if late:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
