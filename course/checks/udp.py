"""The checks of notebook 03 (UDP): what its graded cells call, with their case tables.

- `check_request_sum`: the learner's request_sum(server, a, b, timeout=..., attempts=...) against a
  `LossyUdpServer` that drops chosen requests or sends stray replies (REQUEST_CASES).
- `check_sum_server`: the learner's serve_sums(sock, n, timeout=...) on a socket bound to 127.0.0.1
  port 0, with clients on other 127.x addresses sending at once (SERVER_CASES).
- `check_chat_peer`: the learner's ChatPeer class, talked to from `UdpChatPeer` reference peers
  (CHAT_CASES).

Each runs the learner's code through `course.checks.runner.LearnerCall` with a deadline, fails with
one sentence that says what to check, and records deterministic evidence (no ports, no timings).
The peers live in `course.udp` and the sum protocol in `course.sumproto`: the requests the checks
send, the reference reply each is judged against, and the reading of what the learner sent all go
through it. This module imports them, never the reverse.
"""
from __future__ import annotations

import socket
import time
from typing import Any, Callable, Iterable

from course import sumproto
from course.checks import no_leaked_sockets, record_evidence
from course.checks.runner import LearnerCall, describe_call
from course.deadline import Deadline, wait_for
from course.errors import YourCodeError
from course.serving import Address, format_address
from course.udp import LossyUdpServer, UdpChatPeer

__all__ = [
    "REQUEST_CASES",
    "VISIBLE_REQUEST_CASES",
    "HIDDEN_REQUEST_CASES",
    "check_request_sum",
    "SERVER_CASES",
    "MALFORMED_SERVER_CASES",
    "VISIBLE_SERVER_CASES",
    "HIDDEN_SERVER_CASES",
    "check_sum_server",
    "CHAT_CASES",
    "VISIBLE_CHAT_CASES",
    "HIDDEN_CHAT_CASES",
    "check_chat_peer",
]


# ----------------------------------------------------------------------------------------------
# Waking learner code: a LearnerCall's `unblock` (called when its with-block ends on a thread still
# running) sends datagrams to the socket a recvfrom waits on
# ----------------------------------------------------------------------------------------------


def _poke(addresses: Iterable[Address], count: int = 1) -> None:
    """Send `count` one-byte datagrams to each address (wakes a recvfrom waiting without timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for addr in addresses:
            for _ in range(count):
                s.sendto(b"?", tuple(addr))


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


# ----------------------------------------------------------------------------------------------
# Check 1: a request with timeout and retry, against a lossy server
# ----------------------------------------------------------------------------------------------

REQUEST_CASES = {
    # name: (server settings, a, b, timeout, attempts, what the call must do)
    "drop first": (dict(drop=[0]), 7, 4, 0.3, 3, "return"),
    "seeded random drops": (dict(fraction=0.5, seed=35), -20, 5, 0.15, 4, "return"),  # seed 35 drops the 1st and 2nd
    "drop first 2 of 3": (dict(drop=[0, 1]), 123456789, 987654321, 0.25, 3, "return"),
    "stray replies": (dict(stray=True, drop=[]), 40, 2, 0.3, 3, "return"),
    "drop all": (dict(drop="all"), 1, 2, 0.15, 3, "raise"),
    "drop all, 2 attempts": (dict(drop="all"), 5, 5, 0.15, 2, "raise"),
    # a stray datagram every 0.02 s, none of them a reply: each attempt must still end after timeout
    # seconds in all; a wait restarted by every datagram would need a 0.3 s silence, which never comes
    "stray datagrams, none answered": (dict(drop="all", chatter=0.02), 3, 4, 0.3, 3, "raise"),
}
VISIBLE_REQUEST_CASES = ["drop first"]
HIDDEN_REQUEST_CASES = ["drop first 2 of 3", "stray replies", "drop all", "drop all, 2 attempts", "stray datagrams, none answered"]


def check_request_sum(request_sum: Callable, cases: Iterable[str] = VISIBLE_REQUEST_CASES, *, slack: float = 2.0) -> None:
    """Call request_sum(server, a, b, timeout=..., attempts=...) against a LossyUdpServer for each
    named case of REQUEST_CASES; fail on the first call that does not do what the case needs."""
    log: list[dict] = []
    try:
        for case in cases:
            settings, a, b, timeout, attempts, must = REQUEST_CASES[case]
            log.append(_request_case(request_sum, case, settings, a, b, timeout, attempts, must, slack))
    finally:
        record_evidence("request_sum", cases=log)


def _request_case(request_sum, case, settings, a, b, timeout, attempts, must, slack) -> dict:
    name = getattr(request_sum, "__name__", "request_sum")
    with LossyUdpServer(**settings) as server:
        call = f"{name}({server.where}, {a}, {b}, timeout={timeout}, attempts={attempts})"
        limit = attempts * timeout + slack
        seen: dict[str, Any] = {"case": case, "a": a, "b": b}
        with no_leaked_sockets(call, ignore_ports=[server.port]):
            started = time.monotonic()
            try:
                got = _call_request(request_sum, server, a, b, timeout, attempts, limit, name, settings)
                raised = None
            except YourCodeError:
                raise
            except NotImplementedError:
                raise
            except Exception as exc:
                got, raised = None, exc
            elapsed = time.monotonic() - started
        server.settle()  # a request sent just before returning is counted too
        sent = len(server.received)
        requests = [sumproto.decode_object(d) for d in server.received]
        if any(r is None or r.get("A") != a or r.get("B") != b for r in requests):
            shown = server.received[0] if server.received else b""
            raise YourCodeError(
                f"{call} sent {shown!r} to the server; send the JSON object {{\"id\": ..., \"A\": {a}, \"B\": {b}}} encoded as UTF-8"
            )
        senders = server.senders()
        if len(senders) > 1:
            raise YourCodeError(
                f"{call} sent its {sent} requests from {len(senders)} different addresses "
                f"({', '.join(format_address(x) for x in senders[:3])}); use one socket for the whole call, "
                "so that a late reply to an earlier attempt still reaches it"
            )
        if must == "return":
            if raised is not None:
                if isinstance(raised, TimeoutError) and sent < attempts:
                    dropped = ", ".join(_ordinal(i + 1) for i in server.dropped)
                    raise YourCodeError(
                        f"{call} raised TimeoutError after sending {sent} request(s), but the server only dropped the {dropped} "
                        f"on purpose and would have answered the next one; send the request again after each timeout, up to {attempts} times"
                    )
                raise YourCodeError(f"{call} raised {type(raised).__name__}: {raised}; it should return {a + b}") from raised
            if got != a + b or type(got) is not int:
                hint = (
                    "; the server sent stray replies first (one from another address, one with another id): "
                    "accept only a reply that comes from the server's address and carries your request's id"
                    if settings.get("stray")
                    else ""
                )
                raise YourCodeError(f"{call} returned {got!r}; expected {a + b} (the \"Sum\" of the reply){hint}")
            if sent > attempts:
                raise YourCodeError(f"{call} sent {sent} requests; it may send at most attempts={attempts}")
            answered = [i for i in range(sent) if i not in server.dropped]
            if not answered:
                raise YourCodeError(
                    f"{call} returned {got!r} although the server answered none of its {sent} request(s); return the \"Sum\" of the server's reply"
                )
            # Evidence holds only what does not depend on timing: which request the server answered
            # first (fixed by its drop rule), or how many requests came when it answered none.
            seen["answered_request"] = answered[0] + 1
            seen["result"] = got
        else:
            if raised is None:
                raise YourCodeError(
                    f"{call} returned {got!r}, but the server dropped every request; after {attempts} attempts without a reply raise TimeoutError"
                )
            if not isinstance(raised, TimeoutError):
                raise YourCodeError(
                    f"{call} raised {type(raised).__name__}: {raised}; when no reply comes after {attempts} attempts, raise TimeoutError"
                ) from raised
            if sent != attempts:
                raise YourCodeError(
                    f"{call} sent {sent} request(s) before raising TimeoutError; it should try exactly attempts={attempts} times"
                )
            if elapsed < attempts * timeout * 0.8:
                raise YourCodeError(
                    f"{call} gave up after {elapsed:.2f} s; wait timeout={timeout} s for a reply after each of the {attempts} attempts"
                )
            seen.update(requests_seen=sent, raised="TimeoutError")
        return seen


def _call_request(request_sum, server, a, b, timeout, attempts, limit, name, settings=None):
    hint = (
        f"it must give up with TimeoutError after {attempts} attempts of {timeout} s each; "
        "does every recvfrom have a timeout (settimeout), and does the retry loop end?"
    )
    if (settings or {}).get("chatter"):
        hint = (
            f"the server answered nothing but a stray datagram reached your socket every {settings['chatter']} s; "
            f"give each attempt one deadline ({timeout} s in all, however many other datagrams come) and set the "
            "socket's timeout to the time left before each recvfrom, instead of waiting timeout s again after each stray datagram"
        )
    with LearnerCall(request_sum, server.address, a, b, timeout=timeout, attempts=attempts, name=name,
                     unblock=lambda: _poke(server.senders())) as run:
        return run.result(
            limit, f"{name}({server.where}, {a}, {b}, timeout={timeout}, attempts={attempts}) did not return within {limit:.2f} s; {hint}"
        )


# ----------------------------------------------------------------------------------------------
# Check 2: a server that answers n datagrams from several clients on one socket
# ----------------------------------------------------------------------------------------------


def _req(id: Any, a: Any, b: Any) -> bytes:
    return sumproto.request(a, b, id=id)  # b'{"id":1,"A":7,"B":4}'; a and b need not be integers here


# name: (client hosts, [(client index, request datagram)], n for serve_sums, serve timeout)
SERVER_CASES: dict[str, tuple[list[str], list[tuple[int, bytes]], int, float]] = {
    "two clients": (["127.0.0.2", "127.0.0.3"], [(0, _req(1, 7, 4)), (1, _req(2, 1, 2)), (0, _req(3, -5, 5)), (1, _req(4, 100, 23))], 4, 2.0),
    "three clients": (
        ["127.0.0.2", "127.0.0.3", "127.0.0.4"],
        [(0, _req(10, 1, 1)), (1, _req(11, 2, 2)), (2, _req(12, 3, 3)), (2, _req(13, 4, 4)), (1, b'{"A": 7, "B": 4}'),
         (0, _req(15, 2**40, 1)), (1, _req(16, -1, -1)), (2, _req("x", 0, 0)), (0, _req(18, 9, 9)),
         # ids that are falsy are ids all the same: `if request.get("id")` drops them
         (2, _req(0, 5, 5)), (0, _req(None, 6, 6)), (1, _req("", 2, 1))],
        12,
        2.0,
    ),
    # One case per kind of malformed request the exercise lists, each followed by valid requests
    # from the same client and another one: a server must answer the error and keep serving.
    "not JSON": (
        ["127.0.0.2", "127.0.0.3"],
        [(0, b"hello"), (1, _req(21, 2, 3)), (0, b""), (0, b'{"id": 22, "A": 1,'), (0, _req(23, 4, 5)), (1, _req(24, 6, 7))],
        6,
        2.0,
    ),
    "not UTF-8": (
        ["127.0.0.2", "127.0.0.3"],
        [(0, b'{"id": 40, "A": 1, "B": 2, "note": "\xff"}'), (1, b"\xff\xfe{}"), (0, _req(41, 2, 3)), (1, _req(42, 20, 22))],
        4,
        2.0,
    ),
    "not an object": (
        ["127.0.0.2", "127.0.0.3"],
        [(0, b"[1, 2]"), (1, _req(51, 1, 2)), (0, b'"7"'), (0, b"42"), (1, b"null"), (0, _req(52, 3, 4)), (1, _req(53, 5, 6))],
        7,
        2.0,
    ),
    "A or B missing": (
        ["127.0.0.2", "127.0.0.3"],
        [(0, b'{"id": 61, "A": 1}'), (1, b'{"B": 2}'), (0, b"{}"), (1, _req(62, 1, 1)), (0, _req(63, 2, 2))],
        5,
        2.0,
    ),
    "not integers": (
        ["127.0.0.2", "127.0.0.3"],
        [(0, _req(71, 1.5, 2)), (1, _req(72, "7", "4")), (0, _req(73, True, 4)), (1, _req(74, None, 1)), (0, _req(75, 1, 2.0)),
         (1, b'{"id": 76, "A": 1e3, "B": 1}'), (0, _req(77, 7, 4)), (1, _req(78, 8, 9))],
        8,
        2.0,
    ),
    "fewer datagrams than n": (["127.0.0.2"], [(0, _req(31, 3, 4))], 3, 0.3),
}
MALFORMED_SERVER_CASES = ["not JSON", "not UTF-8", "not an object", "A or B missing", "not integers"]
VISIBLE_SERVER_CASES = ["two clients"]
HIDDEN_SERVER_CASES = ["three clients", *MALFORMED_SERVER_CASES, "fewer datagrams than n"]


def check_sum_server(serve_sums: Callable, cases: Iterable[str] = VISIBLE_SERVER_CASES, *, reply_within: float = 2.0, slack: float = 2.0) -> None:
    """Bind a UDP socket on 127.0.0.1 port 0, run serve_sums(sock, n, timeout=...) in a thread, and
    send it the datagrams of each named case of SERVER_CASES from client sockets on other 127.x
    addresses at once; every client must get its own replies, from the server's address; then
    serve_sums must return (or raise TimeoutError if fewer than n came) and close the socket."""
    log: list[dict] = []
    try:
        for case in cases:
            log.append(_server_case(serve_sums, case, reply_within, slack))
    finally:
        record_evidence("serve_sums", cases=log)


def _server_case(serve_sums: Callable, case: str, reply_within: float, slack: float) -> dict:
    hosts, plan, n, timeout = SERVER_CASES[case]
    name = getattr(serve_sums, "__name__", "serve_sums")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    address = sock.getsockname()
    where = format_address(address)
    call = f"{name}(<socket bound to {where}>, {n}, timeout={timeout})"
    clients = []
    try:
        for host in hosts:
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            clients.append(c)
            c.bind((host, 0))
            c.setblocking(False)
        with LearnerCall(serve_sums, sock, n, timeout=timeout, name=name, unblock=lambda: _poke([address], count=n)) as run:
            for ci, payload in plan:
                clients[ci].sendto(payload, address)
            replies = _collect_replies(run, call, clients, plan, reply_within)
            seen = _judge_replies(call, where, clients, hosts, plan, replies, address, reply_within)
            must_raise = len(plan) < n
            limit = (timeout + slack) if must_raise else slack
            try:
                run.result(
                    limit,
                    f"{call} did not return within {limit} s after the last datagram; "
                    + (f"it got only {len(plan)} of {n} datagrams, so it should raise TimeoutError after waiting timeout={timeout} s"
                       if must_raise else f"it answered all {n} datagrams, so its loop should end there"),
                )
                raised = None
            except (YourCodeError, NotImplementedError):
                raise
            except Exception as exc:
                raised = exc
            if must_raise and not isinstance(raised, TimeoutError):
                what = "returned" if raised is None else f"raised {type(raised).__name__}: {raised};"
                raise YourCodeError(
                    f"{call} {what} but only {len(plan)} of {n} datagrams came; when none comes for timeout={timeout} s, raise TimeoutError"
                )
            if not must_raise and raised is not None:
                raise YourCodeError(f"{call} raised {type(raised).__name__}: {raised}; it should answer {n} datagrams and return") from raised
            if sock.fileno() != -1:
                raise YourCodeError(f"{call} {'raised' if must_raise else 'returned'} but left its socket open; close it (e.g. `with sock:`) before leaving")
            seen.update(case=case, returned=not must_raise, raised_timeout=must_raise, closed=True)
            return seen
    finally:
        for c in clients:
            c.close()
        sock.close()


def _collect_replies(run: LearnerCall, call: str, clients, plan, within: float) -> list[list[tuple[bytes, Address]]]:
    """Read from every client until as many replies have come as requests were sent, or `within` s."""
    got: list[list[tuple[bytes, Address]]] = [[] for _ in clients]
    deadline = Deadline(within)
    while not deadline.expired():
        for i, c in enumerate(clients):
            try:
                while True:
                    got[i].append(c.recvfrom(65535))
            except BlockingIOError:
                pass
        if sum(map(len, got)) >= len(plan):
            break  # every reply has come (to the right clients or not): no need to wait longer
        if run.done and run.error is not None:
            exc = run.error
            if isinstance(exc, NotImplementedError):
                raise exc
            if not isinstance(exc, TimeoutError):
                raise YourCodeError(f"{call} raised {type(exc).__name__}: {exc}; it should answer every datagram with sendto(reply_bytes, address)") from exc
        time.sleep(0.01)
    return got


def _what_is_wrong(request: bytes) -> str:
    """The malformed kind of a request, as the check's sentences name it: 'not JSON', 'not a JSON
    object', 'missing B', 'A and B must be integers'."""
    try:
        sumproto.parse_request(request)
    except sumproto.BadRequest as bad:
        if bad.kind == "missing":
            return f"missing {' and '.join(bad.keys)}"
        if bad.kind == "not-integer":
            return f"{' and '.join(bad.keys)} must be integers"
        return {"not-object": "not a JSON object"}.get(bad.kind, "not JSON")  # not UTF-8 is not JSON either
    raise ValueError(f"{request!r} is a valid request")


def _judge_replies(call, where, clients, hosts, plan, replies, address, within) -> dict:
    served = []
    extra: YourCodeError | None = None  # replies a client never asked for: reported after missing ones
    for i, (c, host) in enumerate(zip(clients, hosts)):
        mine = [p for ci, p in plan if ci == i]
        pending = list(replies[i])
        for payload in mine:
            reference = sumproto.answer(payload).decode("utf-8")  # the reply the course's server sends
            expected = sumproto.decode_object(reference)
            request = sumproto.decode_object(payload)
            rid = request.get("id") if request else None
            if not pending:
                others = [f"{hosts[j]} got {len(replies[j])} for its {sum(1 for ci, _ in plan if ci == j)}" for j in range(len(clients)) if j != i]
                also = f" ({'; '.join(others)})" if others else ""
                client = format_address(c.getsockname())
                if sum(map(len, replies)) >= len(plan):
                    head = f"your server at {where} sent all its {len(plan)} replies, but none to the client at {client}"
                else:
                    head = f"no reply from your server at {where} within {within} s to the client at {client}"
                raise YourCodeError(
                    f"{head}, which sent {payload!r}{also}; did serve_sums call sendto with the address recvfrom returned for that datagram?"
                )
            match = None
            has_id = isinstance(request, dict) and "id" in request
            for k, (data, sender) in enumerate(pending):
                body = sumproto.decode_object(data)
                if body is None:
                    raise YourCodeError(
                        f"your server replied {data!r} to {payload!r}; reply with a JSON object such as "
                        f"{reference} encoded as UTF-8"
                    )
                if body.get("id") == rid and ("id" in body) == has_id:
                    match = k
                    break
                if "Error" in expected and "id" not in body:
                    match = k  # an error reply may leave the id out (a malformed request may have none)
                    break
            if match is None:
                data = pending[0][0]
                raise YourCodeError(
                    f"the client at {format_address(c.getsockname())} sent {payload!r} and got {data!r}; "
                    f"the reply should be {reference} (copy the request's \"id\" into the reply when it has one"
                    + ("; an error reply may also leave it out)" if "Error" in expected else ")")
                )
            data, sender = pending.pop(match)
            body = sumproto.decode_object(data)
            if tuple(sender[:2]) != tuple(address[:2]):
                raise YourCodeError(
                    f"the reply to {payload!r} came from {format_address(sender)}, not from your server's address {where}; "
                    "send replies with sendto on the socket the request arrived on"
                )
            if "Error" in expected:
                if not isinstance(body.get("Error"), str) or "Sum" in body:
                    raise YourCodeError(
                        f"your server replied {data!r} to the malformed request {payload!r} ({_what_is_wrong(payload)}); "
                        f"reply with {{\"Error\": \"<what is wrong>\"}} (and keep serving the other datagrams)"
                    )
                served.append([host, payload.decode("utf-8", "backslashreplace"), "Error"])
            else:
                if body != expected:
                    raise YourCodeError(f"your server replied {data!r} to {payload!r}; expected {reference}")
                served.append([host, payload.decode("utf-8"), body])
        if pending and extra is None:
            extra = YourCodeError(
                f"the client at {format_address(c.getsockname())} sent {len(mine)} request(s) but got {len(replies[i])} replies, "
                f"including {pending[0][0]!r} that answers another client; sendto the address recvfrom returned with each datagram"
            )
    if extra is not None:
        raise extra
    return {"served": served}


# ----------------------------------------------------------------------------------------------
# Check 3: a chat peer, against the reference chat peer
# ----------------------------------------------------------------------------------------------

CHAT_CASES = ["hello", "bound host", "unicode", "three lines", "nothing waiting", "other sender"]
VISIBLE_CHAT_CASES = ["hello"]
HIDDEN_CHAT_CASES = ["bound host", "unicode", "three lines", "nothing waiting", "other sender"]


def check_chat_peer(ChatPeer: type, cases: Iterable[str] = VISIBLE_CHAT_CASES, *, within: float = 2.0) -> None:
    """Make a ChatPeer(host) for each named case of CHAT_CASES and talk to it from UdpChatPeer
    reference peers: what it sends must arrive as UTF-8 lines from its own address, receive(t)
    must return (text, sender address) or None after t seconds, close() must close its socket."""
    log: list[dict] = []
    try:
        for case in cases:
            log.append(_chat_case(ChatPeer, case, within))
    finally:
        record_evidence("ChatPeer", cases=log)


class _Learner:
    """Calls the methods of a learner's object with deadlines, naming them in messages."""

    def __init__(self, obj: Any, label: str, wake: Callable[[], None]):
        self.obj, self.label, self.wake = obj, label, wake

    def __call__(self, method: str, *args, within: float = 1.0):
        fn = getattr(self.obj, method, None)
        if fn is None:
            raise YourCodeError(f"{self.label} has no method {method}(); the exercise asks for send, receive and close")
        with LearnerCall(fn, *args, name=f"{self.label}.{method}", unblock=self.wake) as run:
            return run.result(
                within,
                f"{describe_call(f'{self.label}.{method}', args)} did not return within {within} s; "
                "does its recvfrom have a timeout (settimeout(timeout)) and does it return None when it expires?",
            )


def _chat_case(ChatPeer: type, case: str, within: float) -> dict:
    host = "127.0.0.3" if case == "bound host" else "127.0.0.1"
    cls = getattr(ChatPeer, "__name__", "ChatPeer")
    label = f"{cls}({host!r})"
    seen: dict[str, Any] = {"case": case}
    bot = UdpChatPeer("127.0.0.2", reply=lambda text: f"收到：{text}" if case == "unicode" else f"you said: {text}")
    other = UdpChatPeer("127.0.0.4")
    with bot, other:
        with no_leaked_sockets(f"{label} after close()", ignore_ports=[bot.port, other.port]):
            with LearnerCall(ChatPeer, host, name=cls) as run:
                peer = run.result(within, f"{label} did not return within {within} s; __init__ should only create and bind the socket")
            address = getattr(peer, "address", None)
            if not (isinstance(address, tuple) and len(address) >= 2 and address[0] == host and isinstance(address[1], int) and address[1] > 0):
                try:
                    peer.close()
                except Exception:
                    pass
                raise YourCodeError(
                    f"{label}.address is {address!r}; bind the socket to ({host!r}, 0) and keep sock.getsockname() in self.address"
                )
            me = format_address(address)
            call = _Learner(peer, label, wake=lambda: _poke([address]))
            try:
                if case in ("hello", "bound host", "unicode"):
                    text = {"unicode": "你好，UDP！"}.get(case, "hello")
                    call("send", text, bot.address)
                    wait_for(
                        lambda: bot.heard, within,
                        lambda: f"the reference peer at {bot.where} heard nothing within {within} s after {label}.send({text!r}, {bot.address}); "
                        "did send() call sendto((text).encode('utf-8'), to)?",
                    )
                    heard, sender = bot.heard[0]
                    if heard != text:
                        raise YourCodeError(
                            f"the reference peer heard {heard!r} after {label}.send({text!r}, ...); send text.encode('utf-8') as one datagram"
                        )
                    if sender != me:
                        raise YourCodeError(
                            f"{label}.send() sent from {sender}, not from the peer's own address {me}; send with the socket you bound in __init__"
                        )
                    expected = [(bot.reply(text), bot.address, "reference peer")]
                elif case == "three lines":
                    expected = [(t, bot.address, "reference peer") for t in ("one", "two", "three")]
                    for t, _, _ in expected:
                        bot.say(t, address)
                elif case == "other sender":
                    expected = [("from elsewhere", other.address, "other peer")]
                    other.say("from elsewhere", address)
                else:
                    expected = []
                got = []
                for text, sender, who in expected:
                    item = call("receive", within, within=within + 1.0)
                    _expect_line(label, item, text, sender)
                    got.append([item[0], who])
                if case == "nothing waiting":
                    # its deadline (2.2 s for a 0.2 s timeout) is the only timing here: the evidence
                    # records what it returned, never how long it took
                    item = call("receive", 0.2, within=2.2)
                    if item is not None:
                        raise YourCodeError(f"{label}.receive(0.2) returned {item!r} although nobody sent anything; return None when the timeout expires")
                    got.append(None)
                seen["received"] = got
                bot.settle()  # a datagram sent just before is heard too, whatever the timing
                seen["heard"] = [t for t, _ in bot.heard]
            finally:
                try:
                    call("close", within=within)
                except YourCodeError:
                    raise
                except Exception as exc:
                    raise YourCodeError(f"{label}.close() raised {type(exc).__name__}: {exc}; it should close the socket") from exc
    return seen


def _expect_line(label: str, item: Any, text: str, sender: Address) -> None:
    call = f"{label}.receive(...)"
    if item is None:
        raise YourCodeError(f"{call} returned None, but {text!r} was sent to it from {format_address(sender)}; recvfrom the socket bound in __init__")
    if not (isinstance(item, tuple) and len(item) == 2):
        raise YourCodeError(f"{call} returned {item!r}; return a pair (text, sender_address)")
    got_text, got_sender = item
    if isinstance(got_text, (bytes, bytearray)):
        raise YourCodeError(f"{call} returned {got_text!r} (bytes); decode the datagram: data.decode('utf-8')")
    if got_text != text:
        raise YourCodeError(f"{call} returned the text {got_text!r}; expected {text!r} (each datagram is one line, in the order sent)")
    if not isinstance(got_sender, tuple) or tuple(got_sender[:2]) != tuple(sender[:2]):
        raise YourCodeError(f"{call} returned the sender {got_sender!r}; expected {tuple(sender)!r}, the address recvfrom returned")
