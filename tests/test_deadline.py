import time

import pytest

from course import YourCodeError
from course.deadline import Deadline, wait_for


def test_wait_for_returns_the_first_truthy_value():
    values = iter([0, None, "", 7, 8])
    assert wait_for(lambda: next(values), 1.0, "never") == 7


def test_wait_for_raises_with_the_message_built_at_the_deadline():
    seen = []
    start = time.monotonic()
    with pytest.raises(YourCodeError, match="still 0 after 0.05 s"):
        wait_for(lambda: seen.append(1) and False, 0.05, lambda: f"still 0 after 0.05 s ({len(seen)} looks)")
    assert time.monotonic() - start < 5.0  # bounded by the deadline, not hung
    assert len(seen) >= 2


def test_wait_for_can_raise_another_error():
    with pytest.raises(TimeoutError):
        wait_for(lambda: False, 0.01, "x", error=TimeoutError)


def test_deadline_counts_down_and_never_goes_negative():
    d = Deadline(0.05)
    assert 0 < d.remaining() <= 0.05
    wait_for(d.expired, 1.0, "deadline never expired")
    assert d.remaining() == 0.0


def test_deadline_in_the_past_is_a_mistake():
    with pytest.raises(ValueError):
        Deadline(0)
