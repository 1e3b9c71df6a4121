"""The checks of assignment 02, the socket object (the graded cells call these).

- `check_describe_socket`: the learner's describe_socket on a socket of each case of
  `DESCRIBE_CASES`, compared key by key with `course.sockets.describe_socket`.
- `check_probe`: the learner's probe on an address of each case of `PROBE_CASES` (a listener, a
  closed port, a full accept queue that never answers, IPv6, an unreachable address); with
  `leaks=True`, only what each call leaves behind (sockets, the default timeout).
- `check_read_lines`: the learner's read_lines on a socket connected to a `course.sockets.LineSender`
  that sends the payload of a case of `READ_LINES_CASES` in odd chunks.

The learner's function runs through the runner (`course.checks.runner`) with a deadline; what it
raised becomes one sentence (`learner_errors`); the inputs and answers are the evidence, with the
kernel's port numbers replaced by 'port' (`without_ports`) so that it is the same in every run.

    from course.checks import sockets as check
    check.check_probe(probe, cases=("open", "refused"))
"""
from __future__ import annotations

import gc
import socket
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from course import kernel
from course.checks import expect_type, record_evidence
from course.checks.runner import LearnerCall, call_with_deadline, learner_errors
from course.errors import SetupError, YourCodeError
from course.framing import split_into_chunks as chunked
from course.serving import Address, format_address, tcp_pair
from course.sockets import (
    DESCRIBE_KEYS,
    UNREACHABLE_HOST,
    FullBacklogListener,
    LineSender,
    closed_port,
    describe_socket,
    listening_socket,
    probe,
)

__all__ = [
    "without_ports",
    "DESCRIBE_DEADLINE",
    "DESCRIBE_CASES",
    "check_describe_socket",
    "PROBE_CASES",
    "PROBE_TIMEOUT",
    "PROBE_DEADLINE",
    "DISTINCT_DEFAULT_TIMEOUT",
    "check_probe",
    "closes_its_sockets",
    "READ_LINES_CASES",
    "FILE_CLOSED_CASES",
    "READ_TIMEOUT",
    "READ_DEADLINE",
    "check_read_lines",
]


@contextmanager
def _learner_raised(call: str, hint: str | Callable[[Exception], str], note: Callable[[Exception], None]) -> Iterator[None]:
    """`learner_errors(call, hint)` for checks whose evidence names the exception the learner's
    function raised (`note(exc)` is called first) and whose hint may depend on it (`hint(exc)`).
    The sentence is learner_errors' own: `<call> raised <Type>: <message>; <hint>`."""
    try:
        yield
    except (NotImplementedError, YourCodeError):
        raise
    except Exception as exc:
        note(exc)
        with learner_errors(call, hint(exc) if callable(hint) else hint):
            raise


def without_ports(value):
    """`value` with every non-zero port of an address tuple replaced by 'port', for evidence that
    is the same on every run: ('127.0.0.1', 40312) -> ['127.0.0.1', 'port']."""
    if isinstance(value, dict):
        return {k: without_ports(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)) and len(value) in (2, 4) and isinstance(value[0], str) and isinstance(value[1], int):
        return [value[0], "port" if value[1] else 0, *value[2:]]
    return value


@contextmanager
def _describe_case(case: str) -> Iterator[socket.socket]:
    """The socket each describe case is about; everything it needed is closed on exit."""
    if case == "fresh-tcp":
        with socket.socket() as s:
            yield s
    elif case == "bound-udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            yield s
    elif case == "listening-tcp":
        with listening_socket() as s:
            yield s
    elif case == "connected-tcp-client":
        with tcp_pair() as (client, _):
            client.settimeout(None)
            yield client
    elif case == "accepted-tcp":
        with tcp_pair() as (_, conn):
            conn.settimeout(None)
            yield conn
    elif case == "connected-udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            peer.bind(("127.0.0.1", 0))
            s.connect(peer.getsockname())
            yield s
    elif case == "ipv6-tcp":
        with tcp_pair("::1") as (client, _):
            client.settimeout(None)
            yield client
    elif case == "non-blocking":
        with tcp_pair() as (client, _):
            client.setblocking(False)
            yield client
    elif case == "with-timeout":
        with tcp_pair() as (client, _):
            client.settimeout(1.5)
            yield client
    elif case == "unix-socketpair":
        a, b = socket.socketpair()
        with a, b:
            yield a
    else:
        raise KeyError(f"no describe case {case!r}; cases are {', '.join(DESCRIBE_CASES)}")


# Seconds describe_socket may take: it blocks on nothing, so only a stuck function meets this deadline.
DESCRIBE_DEADLINE = 10.0

DESCRIBE_CASES = ("fresh-tcp", "bound-udp", "listening-tcp", "connected-tcp-client", "accepted-tcp",
                  "connected-udp", "ipv6-tcp", "non-blocking", "with-timeout", "unix-socketpair")

_DESCRIBE_HINTS = {
    "family": "sock.family is an enum: its .name is 'AF_INET'",
    "type": "sock.type is an enum: its .name is 'SOCK_STREAM' (str() of it gives only the number)",
    "local": "use sock.getsockname() as it returns it",
    "peer": "use sock.getpeername(), and None when it raises OSError because the socket is not connected",
    "timeout": "use sock.gettimeout()",
    "blocking": "use sock.getblocking(): a socket with a timeout is still blocking, only timeout 0.0 is non-blocking",
}


def _describe_hint(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return "getpeername() raises OSError on a socket without a peer: give 'peer' None then"
    return "use only the socket's own methods and attributes"


def check_describe_socket(fn: Callable, cases: Sequence[str] = ("fresh-tcp", "bound-udp")) -> None:
    """Call the learner's describe function on a socket of each case and compare with
    `describe_socket`, key by key; fail with the first difference and a hint."""
    seen = []
    try:
        for case in cases:
            with _describe_case(case) as sock:
                expected = describe_socket(sock)
                call = f"describe_socket(<{case} socket>)"
                with _learner_raised(call, _describe_hint, lambda exc: seen.append({"case": case, "raised": type(exc).__name__})):
                    got = call_with_deadline(fn, sock, timeout=DESCRIBE_DEADLINE, name="describe_socket")
                seen.append({"case": case, "returned": without_ports(got) if isinstance(got, dict) else got})
                expect_type(got, dict, call)
                if sorted(got) != sorted(DESCRIBE_KEYS):
                    raise YourCodeError(
                        f"{call} returned the keys {sorted(got)}; it should return exactly {list(DESCRIBE_KEYS)}"
                    )
                for key in DESCRIBE_KEYS:
                    if got[key] != expected[key] or type(got[key]) is not type(expected[key]):
                        raise YourCodeError(
                            f"{call} gave {key}={got[key]!r}, expected {expected[key]!r}; {_DESCRIBE_HINTS[key]}"
                        )
    finally:
        record_evidence("describe_socket", cases=seen)


def _connection_arrived(listener: socket.socket) -> bool:
    """Whether a connection reached `listener` (it waits in the accept queue, closed or not)."""
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@contextmanager
def _probe_target(case: str) -> Iterator[tuple[Address, str, socket.socket | None]]:
    """(address to probe, the right answer, the listening socket of an "open" case or None) for a
    probe case; what it needs stays open for the block."""
    if case in ("open", "ipv6-open"):
        with listening_socket("::1" if case == "ipv6-open" else "127.0.0.1") as s:
            yield s.getsockname()[:2], "open", s
    elif case in ("refused", "ipv6-refused"):
        host = "::1" if case == "ipv6-refused" else "127.0.0.1"
        with closed_port(host) as port:
            yield (host, port), "refused", None
    elif case == "timeout":
        with FullBacklogListener() as full:
            yield full.address, "timeout", None
    elif case == "other-error":
        with closed_port() as port:
            address = (UNREACHABLE_HOST, port)
            right = probe(address, PROBE_TIMEOUT)
            if right in ("open", "refused", "timeout"):
                raise SetupError(f"a TCP connect to {format_address(address)} gave {right!r} on this machine, not an "
                                 f"error such as ENETUNREACH: this kernel has no broadcast route for {UNREACHABLE_HOST}")
            yield address, right, None
    else:
        raise KeyError(f"no probe case {case!r}; cases are {', '.join(PROBE_CASES)}")


PROBE_CASES = ("open", "refused", "timeout", "ipv6-open", "ipv6-refused", "other-error")
PROBE_TIMEOUT = 0.3  # seconds the checks give probe() for the handshake
# Seconds before a probe() that ignores its timeout is called hanging: far above PROBE_TIMEOUT, so that a
# loaded machine only makes a right probe slower; far below the ~127 s of the kernel's own SYN retries.
PROBE_DEADLINE = 10.0
# The default timeout check_probe(leaks=True) sets before each call: a value no probe sets by chance, so
# any call of socket.setdefaulttimeout() in probe is seen; below PROBE_DEADLINE, so that a probe that
# forgot settimeout (it inherits this default) still returns there: that check judges leaks only.
DISTINCT_DEFAULT_TIMEOUT = 1.2345

_PROBE_HINTS = {
    "open": "connect_ex returns 0 when the handshake completes",
    "refused": "connect_ex returns errno.ECONNREFUSED when nobody listens",
    "timeout": "the listener never answers; with settimeout(timeout), connect_ex returns errno.EAGAIN when the time is up",
    "other-error": "for any other error number, return its name, errno.errorcode[code]",
}


@contextmanager
def _default_timeout(value: float | None) -> Iterator[None]:
    """socket.setdefaulttimeout(value) for the block, then back to what it was."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(value)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def check_probe(fn: Callable, cases: Sequence[str] = ("open", "refused"), leaks: bool = False) -> None:
    """Probe the address of each case with the learner's function.

    Without `leaks`: it must return the right answer, not raise, within PROBE_DEADLINE; the default
    timeout is None during each call, whatever earlier cells set. With `leaks`: each call must leave
    no socket open and socket.getdefaulttimeout() as it was: the check sets a distinctive default
    (DISTINCT_DEFAULT_TIMEOUT) before each call, so that any change is seen, and puts the old one back
    after; what probe returns (or raises) is not judged there.
    """
    seen = []
    try:
        for case in cases:
            with _probe_target(case) as (address, right, listener):
                call = f"probe({address!r}, timeout={PROBE_TIMEOUT})"
                with _default_timeout(DISTINCT_DEFAULT_TIMEOUT if leaks else None):
                    if leaks:
                        with closes_its_sockets(call):
                            try:
                                _call_probe(fn, address)
                            except (NotImplementedError, YourCodeError):
                                raise
                            except Exception:  # not judged here: only what it leaves behind
                                pass
                        if listener is not None and not _connection_arrived(listener):
                            # a probe that connects to nothing leaves nothing behind: that proves nothing
                            raise YourCodeError(
                                f"{call} made no connection to the socket listening at {format_address(address)}; "
                                f"probe must connect (connect_ex) to find out, and then close the socket it made")
                        if (changed := socket.getdefaulttimeout()) != DISTINCT_DEFAULT_TIMEOUT:
                            raise YourCodeError(
                                f"{call} changed socket.getdefaulttimeout() from {DISTINCT_DEFAULT_TIMEOUT!r} to {changed!r}; "
                                f"set the timeout on your own socket with s.settimeout(timeout), not socket.setdefaulttimeout()"
                            )
                        # the evidence of this cell is what it judges (nothing left behind), never the
                        # answer, which other cells judge: a wrong answer must not cost this cell too
                        seen.append({"case": case, "left_no_socket": True, "default_timeout_unchanged": True})
                        continue
                    instead = f"probe must return {right!r} instead of raising: use connect_ex, which returns the error number"
                    with _learner_raised(call, instead, lambda exc: seen.append({"case": case, "raised": type(exc).__name__})):
                        got = _call_probe(fn, address)
                seen.append({"case": case, "returned": got})
                if got != right:
                    hint = _PROBE_HINTS[case.removeprefix("ipv6-")]
                    if case.startswith("ipv6") and isinstance(got, str) and got not in ("open", "refused", "timeout"):
                        hint += "; an IPv6 address such as '::1' needs an AF_INET6 socket"
                    raise YourCodeError(f"{call} returned {got!r}, expected {right!r}; {hint}")
    finally:
        record_evidence("probe", cases=seen, leaks_checked=leaks)


@contextmanager
def closes_its_sockets(what: str) -> Iterator[None]:
    """Fail if the block leaves a socket unclosed: one still open as a descriptor of this process
    (even one the kernel lists nowhere, like a socket whose connect failed), or one that Python had
    to close itself when it was garbage-collected (it warns "unclosed <socket...>" then).

    Only this process's descriptors are compared, before and after. Garbage is collected before
    the block (so that sockets other code left to the collector are not blamed on it) and after it
    (so that what is still open then is held by a live reference): no grace period, and a loaded
    machine cannot change the verdict.
    """
    gc.collect()
    before = kernel.socket_inodes_of_this_process()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and "socket" in str(w.message)]
    if unclosed:
        raise YourCodeError(
            f"{what} did not close its socket (Python closed it when it was garbage-collected: {unclosed[0]}); "
            f"close it, for example with `with socket.socket(...) as s:`"
        )
    new = kernel.socket_inodes_of_this_process() - before
    if new:
        listed = {e.inode: e for e in kernel.all_sockets() if e.inode in new}
        described = [f"{e.proto} {e.local[0]}:{e.local[1]} -> {e.remote[0]}:{e.remote[1]} {e.state}" if (e := listed.get(i))
                     else "a socket that is neither bound nor connected" for i in sorted(new)]
        raise YourCodeError(
            f"{what} left {len(new)} socket(s) open ({', '.join(described[:3])}); close every socket it creates, "
            f"also when connect_ex fails, for example with `with socket.socket(...) as s:`"
        )


def _call_probe(fn: Callable, address: Address):
    """The learner's probe(address, PROBE_TIMEOUT), given PROBE_DEADLINE s to return."""
    run = LearnerCall(fn, address, PROBE_TIMEOUT, name="probe")
    try:
        return run.result(PROBE_DEADLINE, f"probe({address!r}, timeout={PROBE_TIMEOUT}) did not return within "
                                          f"{PROBE_DEADLINE:g} s; call s.settimeout(timeout) before connect_ex")
    finally:
        run.restore_hook()


READ_LINES_CASES = {
    # name: (payload the server sends, chunk sizes). Each rule of the exercise has its edge in the
    # cases of one graded cell only: empty lines and a last line without '\n' in the 1-byte cases;
    # split characters, spaces at the ends and '\r' in the UTF-8 cases (which end with '\n').
    "whole": (b"one\ntwo\nthree\n", (64,)),
    "one-byte-chunks": (b"alpha\nbeta\n\ngamma delta\nno newline at the end", (1,)),
    "one-byte-empty-last": (b"x\n\ny\n\n", (1,)),
    "utf8-split": ("你好，世界\n  two spaces each side  \n再见\n".encode(), (1, 2)),
    "odd-chunks": ("第一行\nsecond line\n  keep my spaces  \n最后一行\n".encode(), (3, 5, 7)),
    "carriage-returns": ("dos line\r\na lone \r inside\n中文\r\n".encode(), (2, 3)),
}
# The cases where the check also wants the file object closed: once read_lines has returned and the
# caller closes the socket, its descriptor must be released (it is not while a makefile() file is open).
FILE_CLOSED_CASES = ("whole",)
READ_TIMEOUT = 10.0  # the timeout of the socket read_lines gets (each recv); only a stuck read meets it
READ_DEADLINE = 30.0  # seconds read_lines may take in all


def check_read_lines(fn: Callable, case: str = "whole") -> None:
    """Connect to a LineSender that sends the case's payload in the case's chunks and closes;
    the learner's function must return every line, decoded, without its '\\n'."""
    payload, chunks = READ_LINES_CASES[case]
    expected = payload.decode("utf-8").split("\n")
    if payload.endswith(b"\n"):
        expected.pop()
    got = None
    try:
        with socket.socket() as sock, LineSender(payload=payload, chunks=chunks, reader=sock) as server:
            sock.settimeout(READ_TIMEOUT)
            sock.connect(server.address)
            call = f"read_lines(<socket connected to {server.where}>)"

            def note(exc: Exception) -> None:
                nonlocal got
                got = {"raised": type(exc).__name__}

            with _learner_raised(call, _read_lines_hint, note):
                got = call_with_deadline(fn, sock, timeout=READ_DEADLINE, name="read_lines")
            if case in FILE_CLOSED_CASES:
                gc.collect()  # a file nobody refers to any more is closed now, whenever its last reference went
                fd = sock.fileno()
                sock.close()  # as the caller does
                if sock.fileno() != -1:
                    raise YourCodeError(
                        f"after {call} returned, the caller closed the socket but its descriptor {fd} stayed open: "
                        f"a file object from sock.makefile() is still open; close it, e.g. `with sock.makefile(...) as f:`"
                    )
        expect_type(got, list, call)
        if got and not all(isinstance(x, str) for x in got):
            bad = next(x for x in got if not isinstance(x, str))
            raise YourCodeError(f"{call} returned a list holding {bad!r} ({type(bad).__name__}); each line must be a str: decode the bytes as UTF-8")
        if got != expected:
            raise YourCodeError(_read_lines_difference(call, got, expected, len(chunked(payload, chunks))))
    finally:
        record_evidence("read_lines", case=case, sent=payload, chunks=len(chunked(payload, chunks)), returned=got)


def _read_lines_hint(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return ("a character's UTF-8 bytes were split between two pieces: decode whole lines, "
                "e.g. with sock.makefile('r', encoding='utf-8')")
    if isinstance(exc, TimeoutError):
        return "the server closes after its last line: stop when a read returns '' (or b''), at end of stream"
    return "read the socket through sock.makefile(...) and return a list of str"


def _read_lines_difference(call: str, got: list, expected: list, n_chunks: int) -> str:
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            if "\r" in e and "\r" not in g:
                return (f"{call} returned line {i} as {g!r}, expected {e!r}; keep every '\\r': only '\\n' ends a line. "
                        f"makefile's text mode turns '\\r\\n' and a lone '\\r' into '\\n' unless you pass newline='\\n'")
            if e == "" and g == (expected[i + 1] if i + 1 < len(expected) else None):
                return f"{call} returned line {i} as {g!r}, expected an empty line ''; keep empty lines: b'\\n' gives ''"
            if i == len(expected) - 1 and e.startswith(g) and len(e) == len(g) + 1:
                return (f"{call} returned the last line as {g!r}, expected {e!r}; a last line without '\\n' keeps all its "
                        f"characters: remove only a '\\n' that is there (line.removesuffix('\\n'))")
            if g.removesuffix("\n") == e:
                return f"{call} returned line {i} as {g!r}, expected {e!r}; remove the '\\n' that ends each line"
            if g.strip() == e.strip():
                return f"{call} returned line {i} as {g!r}, expected {e!r}; remove only the '\\n', not other whitespace"
            return (f"{call} returned line {i} as {g!r}, expected {e!r}; the server sent {n_chunks} chunks: "
                    f"keep reading until the peer closes, makefile() collects the pieces of a line for you")
    if len(got) == len(expected) + 1 and got[-1] == "":
        return (f"{call} returned {len(got)} lines ending with an empty one, expected {expected!r}; text that ends "
                f"with '\\n' has no empty line after it (iterate over the file instead of splitting)")
    return (f"{call} returned {len(got)} lines, expected {len(expected)}: {expected!r}; read until the peer closes "
            f"(readline() returns '' then), and keep a last line that has no '\\n'")
