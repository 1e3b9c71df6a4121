"""course.checks.runner: the one way the checks run learner code."""
from __future__ import annotations

import socket
import threading

import pytest

from course.checks.runner import LearnerCall, call_with_deadline, learner_errors
from course.errors import YourCodeError


def test_value_error_and_coroutine_come_back():
    assert call_with_deadline(lambda a, b: a + b, 2, 3) == 5

    async def doubled(x):
        return 2 * x

    assert call_with_deadline(doubled, 21) == 42
    with pytest.raises(KeyError):
        call_with_deadline(lambda: {}["missing"])
    with pytest.raises(NotImplementedError):
        call_with_deadline(lambda: (_ for _ in ()).throw(NotImplementedError()))


def test_an_overrun_is_one_sentence_and_stop_ends_a_recv_without_timeout(capfd):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        address = s.getsockname()

        def waits_forever():
            s.recvfrom(100)  # no timeout: only a datagram (the unblock) wakes it
            while True:
                pass  # and then spins: only StoppedByCheck ends it

        run = LearnerCall(waits_forever, name="waits_forever")
        with pytest.raises(YourCodeError, match=r"^waits_forever\(\) did not return within 0.2 s; does every"):
            run.result(0.2)

        def unblock():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as poke:
                poke.sendto(b"?", address)

        run.stop(unblock)
        run.restore_hook()
        assert run.done
    assert "StoppedByCheck" not in capfd.readouterr().err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread that dies on purpose
def test_threads_it_starts_and_their_deaths_are_reported():
    release = threading.Event()

    def starts_two():
        threading.Thread(target=lambda: 1 / 0, name="dies").start()
        threading.Thread(target=release.wait, args=(5,), name="lingers").start()

    with LearnerCall(starts_two) as run:
        run.result(2.0)
        assert [t.name for t in run.wait_threads(0.2)] == ["lingers"]
        release.set()
        assert run.wait_threads(2.0) == []
        assert [(name, type(exc).__name__) for name, exc in run.thread_errors] == [("dies", "ZeroDivisionError")]


def test_learner_errors_translates_only_the_learners_exceptions():
    with pytest.raises(YourCodeError, match=r"^f\(1\) raised ValueError: bad; check the input$"):
        with learner_errors("f(1)", "check the input"):
            raise ValueError("bad")
    for passes in (NotImplementedError("stub"), YourCodeError("verdict")):
        with pytest.raises(type(passes)):
            with learner_errors("f(1)"):
                raise passes
