"""The one way the checks run learner code.

Every check that calls a learner's function, or runs a learner's server, does it through
`LearnerCall`: the learner's code runs in a daemon thread named ``learner-<name>``, the check waits
for it with a deadline, gets its value back or its exception re-raised, and can end it if it
overran (a stop event it was given is set, an exception is raised in the thread, and a callback the
check provides wakes a blocking call it waits in). Threads the learner's code starts are watched
too: one that dies of an exception is reported, one still running at the end is named.

    with LearnerCall(serve, listener, stop, name="serve_echo", stop_event=stop) as run:
        ...talk to it...
        run.check_running(what="serving on 127.0.0.1:41234")
        run.stop(unblock=lambda: ...)

    value = call_with_deadline(request_sum, address, 7, 4, timeout=3.0)

`learner_errors(call, hint)` is the one translation of an exception the learner's code raised
into the sentence the learner reads; a blank stub's NotImplementedError and a check's own
YourCodeError pass through unchanged.

Async functions (``async def``) are run with `asyncio.run` in the same thread, so a learner may
write a coroutine wherever the exercise does not ask for a plain function.

This module imports nothing of the course but `errors` and `deadline`.
"""
from __future__ import annotations

import asyncio
import ctypes
import inspect
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from course.deadline import Deadline
from course.errors import YourCodeError

__all__ = [
    "DEFAULT_TIMEOUT",
    "LearnerCall",
    "StoppedByCheck",
    "call_with_deadline",
    "describe_call",
    "learner_errors",
]

DEFAULT_TIMEOUT = 2.0


class StoppedByCheck(BaseException):
    """Raised inside a learner thread that overran its deadline, to end it (never seen by a learner:
    a BaseException, so that `except Exception` in the learner's code does not swallow it)."""


def describe_call(name: str, args: tuple = (), kwargs: dict | None = None) -> str:
    """`name(arg, ..., key=value)` as the learner would write it, cut at 120 characters."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in (kwargs or {}).items()]
    text = f"{name}({', '.join(parts)})"
    return text if len(text) <= 120 else text[:117] + "..."


@contextmanager
def learner_errors(call: str, hint: str = "") -> Iterator[None]:
    """Turn an exception raised by the learner's code inside the block into a YourCodeError that
    says `<call> raised <Type>: <message>; <hint>`. NotImplementedError (a blank stub) and
    YourCodeError (a check's own verdict) pass through unchanged."""
    try:
        yield
    except (NotImplementedError, YourCodeError):
        raise
    except Exception as exc:
        text = f"{call} raised {type(exc).__name__}: {exc}"
        raise YourCodeError(f"{text}; {hint}" if hint else text) from exc


class LearnerCall:
    """`fn(*args, **kwargs)` running in a daemon thread, started at once.

    - `result(timeout, message)`: its return value; re-raises what it raised; YourCodeError(message)
      if it is still running at the deadline.
    - `done`, `join(timeout)`: whether it has returned.
    - `stop(unblock)`: set `stop_event` (if one was given), wait a moment for a clean return, then
      raise StoppedByCheck in the thread and call `unblock()` (for example, send a datagram to the
      socket a recvfrom waits on; given here or to the constructor) until it ends, so that it does
      not stay behind.
    - `thread_errors`: (thread name, exception) of the threads started while it ran that died of
      an exception (threading.excepthook, restored on exit); `started_threads()`: those still alive.
    - As a context manager, leaving the block stops it and restores the excepthook.
    """

    def __init__(self, fn: Callable, *args: Any, name: str | None = None,
                 stop_event: threading.Event | None = None, unblock: Callable[[], None] | None = None, **kwargs: Any):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.unblock = unblock  # what `stop()` calls by default (leaving the `with` block included)
        self.name = name or getattr(fn, "__name__", "your function")
        self.stop_event = stop_event
        self.box: dict[str, Any] = {}
        self.thread_errors: list[tuple[str, BaseException]] = []
        self._threads_before = set(threading.enumerate())
        self._previous_hook = threading.excepthook
        threading.excepthook = self._excepthook
        self._hooked = True
        self.thread = threading.Thread(target=self._run, name=f"learner-{self.name}", daemon=True)
        self.thread.start()

    # the learner's thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:  # the outer try: StoppedByCheck may arrive while the inner handlers run, too
            try:
                value = self.fn(*self.args, **self.kwargs)
                if inspect.iscoroutine(value):  # an async def: run it to its end here
                    value = asyncio.run(value)
                self.box["value"] = value
            except StoppedByCheck:
                pass
            except BaseException as exc:  # handed to the checking thread by result()
                self.box["error"] = exc
        except StoppedByCheck:
            pass

    def _excepthook(self, args: Any) -> None:
        if isinstance(args.exc_value, StoppedByCheck):
            return  # a thread this runner ended: nothing for the learner to read
        if args.thread is not None and args.thread not in self._threads_before and args.exc_value is not None:
            self.thread_errors.append((args.thread.name, args.exc_value))
        self._previous_hook(args)

    # the checking thread ---------------------------------------------------------------------
    @property
    def call(self) -> str:
        return describe_call(self.name, self.args, self.kwargs)

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        return self.box.get("error")

    def join(self, timeout: float) -> bool:
        self.thread.join(max(0.0, timeout))
        return self.done

    def result(self, timeout: float, message: str | None = None) -> Any:
        if not self.join(timeout):
            raise YourCodeError(message or (
                f"{self.call} did not return within {timeout} s; does every recv/accept/recvfrom in it "
                f"have a timeout, and does its loop end?"))
        if "error" in self.box:
            raise self.box["error"]
        return self.box.get("value")

    def started_threads(self) -> list[threading.Thread]:
        """Threads started since this call began (by the learner's code), still alive."""
        return [t for t in threading.enumerate()
                if t not in self._threads_before and t.is_alive() and t is not self.thread
                and t is not threading.current_thread()]

    def wait_threads(self, timeout: float) -> list[threading.Thread]:
        """Wait up to `timeout` s for the threads the learner's code started to end; those still alive."""
        deadline = Deadline(timeout)
        while True:
            alive = self.started_threads()
            if not alive or deadline.expired():
                return alive
            alive[0].join(min(0.05, deadline.remaining()))

    def stop(self, unblock: Callable[[], None] | None = None, grace: float = 0.2) -> None:
        """End the learner's thread: set the stop event, then, if it has not returned within
        `grace` s, raise StoppedByCheck in it and call `unblock()` (default: the one given to the
        constructor), up to three times."""
        unblock = unblock or self.unblock or (lambda: None)
        if self.stop_event is not None:
            self.stop_event.set()
            if self.join(grace):
                return
        if self.done:
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread.ident), ctypes.py_object(StoppedByCheck))
        for _ in range(3):
            try:
                unblock()
            except OSError:
                pass
            if self.join(grace):
                return

    def restore_hook(self) -> None:
        if self._hooked:
            if threading.excepthook == self._excepthook:
                threading.excepthook = self._previous_hook
            self._hooked = False

    def __enter__(self) -> "LearnerCall":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.stop()
        finally:
            self.restore_hook()


def _quiet_stops() -> None:
    """A StoppedByCheck that ends a thread after its runner has gone (the thread ran on past `stop`)
    is not printed as "Exception in thread ..." either: installed once, when this module is imported."""
    previous = threading.excepthook

    def hook(args: Any) -> None:
        if not isinstance(args.exc_value, StoppedByCheck):
            previous(args)

    threading.excepthook = hook


_quiet_stops()


def call_with_deadline(fn: Callable, *args: Any, timeout: float = DEFAULT_TIMEOUT, name: str | None = None, **kwargs: Any) -> Any:
    """Call `fn(*args, **kwargs)` (or run the coroutine it returns) with at most `timeout` seconds.

    Returns what it returned and re-raises what it raised (NotImplementedError included, so that a
    blank exercise says so). If it is still running at the deadline, raise YourCodeError; the
    thread is a daemon, and the check's reference peer closes its sockets, which usually unblocks it.
    """
    run = LearnerCall(fn, *args, name=name, **kwargs)
    try:
        return run.result(timeout)
    finally:
        run.restore_hook()
