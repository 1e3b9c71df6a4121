"""Deadlines: every wait in the course is bounded in time (trio's `fail_after` habit).

`wait_for` polls a condition at a short, bounded interval until it holds or the deadline passes;
tests and notebooks use it instead of sleeping, so that they never depend on the machine's speed
and never wait longer than they must.
"""
import time
from typing import Callable, TypeVar

from course.errors import YourCodeError

__all__ = [
    "POLL_INTERVAL",
    "Deadline",
    "wait_for",
]

T = TypeVar("T")

POLL_INTERVAL = 0.005  # seconds between two looks at a condition; short against any deadline


class Deadline:
    """A point in time, `seconds` from now, on the monotonic clock."""

    def __init__(self, seconds: float):
        if seconds <= 0:
            raise ValueError(f"a deadline must be in the future, got {seconds!r} s")
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    message: str | Callable[[], str],
    error: type[Exception] = YourCodeError,
) -> T:
    """Return the first truthy value of `condition()`, checked every few ms for `timeout` seconds.

    When the deadline passes, raise `error` with `message` (a string, or a function that builds
    one from the state at that moment, so that the message can give the values seen last).
    """
    deadline = Deadline(timeout)
    while True:
        value = condition()
        if value:
            return value
        if deadline.expired():
            raise error(message() if callable(message) else message)
        time.sleep(min(POLL_INTERVAL, deadline.remaining()))
