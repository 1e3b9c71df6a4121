"""Learner-facing checks: what the visible self-checks and the hidden tests of every notebook call.

Each check runs the learner's function (or talks to the learner's server) with a deadline, and
fails with one sentence that says what happened and what to check, with the values in it:

    no reply from your server at 127.0.0.1:54012 within 2.0 s; did it sendto() the client's address?

A learner function that hangs, raises, returns the wrong type or leaks sockets is reported in
seconds; the kernel never hangs on it. Failures raise `YourCodeError` (an AssertionError).

Every check also records *evidence*: the inputs it used and what it observed, as plain data
(numbers, strings, bytes, lists). In a Jupyter kernel the evidence is published as an output of the
cell with the MIME type `EVIDENCE_MIME`; the autograder compares it, in a process that never ran
learner code, with the evidence the instructor's solution produced. A kernel that forges a passing
cell without the evidence to match earns nothing.
"""
from __future__ import annotations

import base64
import json
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable

from course import kernel
from course.deadline import Deadline
from course.errors import YourCodeError
from course.checks.runner import DEFAULT_TIMEOUT, LearnerCall, call_with_deadline, describe_call, learner_errors

__all__ = [
    "EVIDENCE_MIME",
    "DEFAULT_TIMEOUT",
    "recorded",
    "plain",
    "record_evidence",
    "describe_call",
    "call_with_deadline",
    "expect_type",
    "check_calls",
    "no_leaked_sockets",
    "LearnerCall",
    "learner_errors",
    "forward_moved_checks",
]

EVIDENCE_MIME = "application/vnd.sockets-course.evidence+json"

# Evidence recorded in this process (tests read it; the notebook kernel also publishes it).
recorded: list[dict] = []


# ----------------------------------------------------------------------------------------------
# Evidence
# ----------------------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """`value` as JSON-safe plain data: bytes become {'bytes': base64}, tuples lists, exceptions
    their type name. Anything else is repr()'d, so that nothing live leaves the kernel."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, BaseException):
        return {"raised": type(value).__name__}
    return {"repr": repr(value)[:200]}


def record_evidence(check: str, **data: Any) -> dict:
    """Record what a check used and observed; publish it as a cell output inside Jupyter."""
    item = {"check": check, **{k: plain(v) for k, v in data.items()}}
    recorded.append(item)
    if os.environ.get("COURSE_EVIDENCE", "1") != "0":
        _publish(item)
    return item


def _publish(item: dict) -> None:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return
    if shell is None or not hasattr(shell, "display_pub"):
        return
    # A display_data whose only representation is our MIME type: invisible in JupyterLab, kept in
    # the executed notebook for the autograder.
    shell.display_pub.publish(data={EVIDENCE_MIME: json.loads(json.dumps(item))}, metadata={})


# ----------------------------------------------------------------------------------------------
# Running learner code with a deadline
# ----------------------------------------------------------------------------------------------
def expect_type(value: Any, expected: type | tuple[type, ...], call: str) -> None:
    """Fail with a clear sentence when `call` returned a value of the wrong type."""
    if isinstance(expected, type) and expected is int and isinstance(value, bool):
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        want = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise YourCodeError(f"{call} returned {value!r} (a {type(value).__name__}); it should return a {want}")


def check_calls(
    fn: Callable,
    reference: Callable,
    cases: Iterable[tuple],
    *,
    name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    hint: str = "",
) -> None:
    """Call the learner's `fn` and the course's `reference` on every case (a tuple of arguments) and
    fail on the first difference: a different value, a different type, or a different exception
    type (when the reference raises, the learner's function must raise the same type).
    """
    name = name or getattr(fn, "__name__", "your function")
    calls = []
    try:
        for args in cases:
            call = describe_call(name, args)
            try:
                expected, expected_error = reference(*args), None
            except Exception as exc:  # the reference raising is part of the specification
                expected, expected_error = None, exc
            try:
                got = call_with_deadline(fn, *args, timeout=timeout, name=name)
            except (NotImplementedError, YourCodeError):
                raise
            except Exception as exc:
                # evidence names the exception the specification asks for when the learner's is one
                # of it (ipaddress.AddressValueError is a ValueError): another idiom, same verdict
                same = expected_error is not None and isinstance(exc, type(expected_error))
                calls.append({"args": args, "raised": type(expected_error).__name__ if same else type(exc).__name__})
                if same:
                    continue
                if expected_error is not None:
                    raise YourCodeError(
                        f"{call} raised {type(exc).__name__}: {exc}; it should raise {type(expected_error).__name__}"
                    ) from exc
                raise YourCodeError(f"{call} raised {type(exc).__name__}: {exc}; it should return {expected!r}. {hint}".strip()) from exc
            calls.append({"args": args, "returned": got})
            if expected_error is not None:
                raise YourCodeError(
                    f"{call} returned {got!r}; it should raise {type(expected_error).__name__} "
                    f"(the reference says: {expected_error}). {hint}".strip()
                )
            expect_type(got, type(expected), call)
            if got != expected:
                raise YourCodeError(f"{call} returned {got!r}; expected {expected!r}. {hint}".strip())
    finally:
        record_evidence(name, calls=calls)


# ----------------------------------------------------------------------------------------------
# Leaked sockets
# ----------------------------------------------------------------------------------------------
@contextmanager
def no_leaked_sockets(what: str, ignore_ports: Iterable[int] = (), grace: float = 5.0):
    """Fail if the block leaves open an IPv4 or IPv6 socket it created, other than sockets on
    `ignore_ports` (a reference server's port: its own accepted connections are not the learner's).

    Sockets are found through /proc/self/fd, so a socket the learner forgot to close is seen even
    when no Python name refers to it any more. Only what the code under test can have made counts:
    sockets of other families (the Jupyter kernel's own ZeroMQ channels are unix sockets, and a
    client whose heartbeat timed out on a busy machine reconnects to them at any moment) and
    connections accepted by a listener this process held before the block (the kernel's TCP
    channels) are not leaks. A socket in no /proc/net table (never bound, or closed by an RST) is
    named from its own address (getsockname), so a reference server's connection reset by its
    client is recognised by its port too.

    No fixed grace: a socket the block opened may be closed a moment later by a thread the block
    started (a server's handler), so the check first waits until every thread started in the block
    has finished (at most `grace` seconds; a thread still running then does not stop the check),
    then looks once.
    """
    def _unlisted_socket(inode: int):
        """(proto, local address) of this process's socket `inode`, which no /proc/net/tcp|udp line
        lists; None if it is not an IPv4/IPv6 TCP or UDP socket (a unix or netlink socket) or is gone."""
        import socket

        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") != f"socket:[{inode}]":
                    continue
                dup = os.dup(int(fd))
            except OSError:
                continue
            try:
                if os.fstat(dup).st_ino != inode:
                    return None  # the descriptor was reused meanwhile
                s = socket.socket(fileno=dup)  # family and type read from the socket itself
            except OSError:
                os.close(dup)
                return None
            try:
                if s.family not in (socket.AF_INET, socket.AF_INET6) or s.type not in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    return None
                proto = "tcp" if s.type == socket.SOCK_STREAM else "udp"
                return proto, s.getsockname()[:2]
            except OSError:
                return None
            finally:
                s.close()  # closes the duplicate only; the socket stays open where it was
        return None

    before = kernel.socket_inodes_of_this_process()
    threads_before = set(threading.enumerate())
    listeners_before = {e.local[1] for e in kernel.all_sockets(("tcp",)) if e.state == "LISTEN" and e.inode in before}
    ignore = set(ignore_ports)
    yield

    deadline = Deadline(grace)
    while not deadline.expired():
        started = [t for t in threading.enumerate() if t not in threads_before and t.is_alive() and t is not threading.current_thread()]
        if not started:
            break
        started[0].join(min(0.05, deadline.remaining()))

    new = kernel.socket_inodes_of_this_process() - before
    if not new:
        return
    listed = {e.inode: e for e in kernel.all_sockets() if e.inode in new}
    left = []
    for inode in sorted(new):
        e = listed.get(inode)
        if e is not None:
            if e.local[1] not in ignore and e.local[1] not in listeners_before:
                left.append(f"{e.proto} {e.local[0]}:{e.local[1]} -> {e.remote[0]}:{e.remote[1]} {e.state}")
            continue
        facts = _unlisted_socket(inode)
        if facts is None:
            continue  # closed meanwhile, or not an IPv4/IPv6 socket: not the learner's
        proto, (host, port) = facts
        if port == 0:
            left.append("a socket that is neither bound nor connected")
        elif port not in ignore and port not in listeners_before:
            left.append(f"{proto} {host}:{port} CLOSE (bound but never connected, or reset by its peer)")
    if left:
        listed_text = ", ".join(left[:3])
        raise YourCodeError(
            f"{what} left {len(left)} socket(s) open ({listed_text}); close every socket it creates, "
            f"for example with `with socket.socket(...) as s:`"
        )



# ----------------------------------------------------------------------------------------------
# Names that moved
# ----------------------------------------------------------------------------------------------
def forward_moved_checks(lesson: str, checks_module: str):
    """A module `__getattr__` for lesson module `lesson` whose `check_*` functions moved to
    `checks_module` (course.checks.<lesson>): a notebook of an earlier release that still calls
    `udp.check_request_sum` keeps working. Only `check_*` names are forwarded."""
    def __getattr__(name: str):
        if name.startswith("check_"):
            import importlib

            return getattr(importlib.import_module(checks_module), name)
        raise AttributeError(f"module {lesson!r} has no attribute {name!r}")

    return __getattr__
