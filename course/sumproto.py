"""Seed 002's sum service as one protocol, without sockets: the request, the reply, the error reply,
the optional id, and the framing, in two dialects.

A request is a JSON object with two integers, `{"A":7,"B":4}`; the reply is `{"Sum":11}`. Every
JSON this module writes is compact, as Go's `json.Marshal` writes it (`separators=(",", ":")`, UTF-8
text, no spaces): `{"Sum":11}`, `{"Error":"..."}`.

Dialects (the `dialect` parameter of every function):

- `"course"`: what the course's peers speak. A request is strict: UTF-8 JSON, an object, "A" and
  "B" present (exactly those names) and integers (not booleans, not 7.0, not "7"); anything else is
  answered `{"Error":"<what is wrong>"}`. A request may carry an "id" (any JSON value), which the
  reply (and the error reply, when the request was an object) copies after "Sum"/"Error", so a UDP
  client can match a reply to its request. On a TCP stream every message is one line ending in
  b"\\n"; over UDP one datagram is one message, without b"\\n".
- `"seed002"`: what seed 002's Go server reads and writes. No framing: each `conn.Read` of at most
  256 bytes (one datagram over UDP) is taken as one request, and the reply is written with nothing
  after it. No id: the Go `Response` holds only `Sum`. No error reply either: the server ignores the
  error `json.Unmarshal` returns and answers with whatever it could fill in. This module decodes as
  Go's `json.Unmarshal` into `struct{A int; B int}` does: keys match the field names ignoring ASCII
  case ("a" fills A), a later duplicate key wins, a value Go cannot store in an `int` (a string, a
  boolean, 7.0, 1e2, a number outside int64) leaves the field as it was, `null` leaves it too,
  invalid input (not JSON, two objects glued together, half an object) fills nothing, and the sum
  wraps around as Go's 64-bit int does. `{"A":"7","B":4}` is answered `{"Sum":4}`, `hello` `{"Sum":0}`.

`answer(data, dialect)` is what a peer calls: the reply payload (JSON bytes, without framing) to one
message. `frame()` and `split_messages()` add and remove the framing of a byte stream. `decode()` and
`decode_object()` read a message as anyone may have written it (spaces or none), before the rules:
what a check does with a learner's request or reply, to say what is wrong with it.
"""
from __future__ import annotations

import json
from typing import Any, NamedTuple

from course.errors import PeerError

__all__ = [
    "DIALECTS",
    "SEED_READ_SIZE",
    "NO_ID",
    "Request",
    "BadRequest",
    "encode",
    "decode",
    "decode_object",
    "request",
    "parse_request",
    "reply",
    "error_reply",
    "answer",
    "parse_reply",
    "frame",
    "split_messages",
]

DIALECTS = ("course", "seed002")
SEED_READ_SIZE = 256  # bytes: seed 002's servers and clients read into make([]byte, 256)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EXAMPLE = '{"A":7,"B":4}'


class _NoId:
    """The id of a request that has none (None would be JSON's null, a valid id)."""

    def __repr__(self) -> str:
        return "NO_ID"

    def __bool__(self) -> bool:
        return False


NO_ID: Any = _NoId()


class Request(NamedTuple):
    """One decoded request. `id` is NO_ID when the request has none (always, in "seed002");
    `ignored` is what Go's json.Unmarshal returned and seed 002's server ignored (None when it
    decoded cleanly; always None in "course", where a bad request raises BadRequest)."""

    a: int
    b: int
    id: Any = NO_ID
    ignored: str | None = None


class BadRequest(ValueError):
    """A request the "course" dialect refuses. `kind` is one of KINDS; `id` is the request's id when
    it was an object with one (the error reply copies it); `keys` names the fields at fault ("missing":
    the absent ones; "not-integer": every one of "A", "B" that is not an integer, although the
    sentence names the first); str() is the sentence for the reply."""

    KINDS = ("not-utf8", "not-json", "not-object", "missing", "not-integer")

    def __init__(self, kind: str, message: str, id: Any = NO_ID, keys: tuple[str, ...] = ()):
        super().__init__(message)
        self.kind, self.id, self.keys = kind, id, tuple(keys)


def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown sum-protocol dialect {dialect!r}; choose one of {DIALECTS}")


def encode(obj: Any) -> bytes:
    """Compact JSON in UTF-8, as Go's json.Marshal writes it: b'{"Sum":11}'."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode(data: bytes | str) -> Any:
    """The JSON value of one message, however it is spaced: UTF-8 bytes (or str) to a Python value.
    ValueError when it is not UTF-8 JSON (NaN and Infinity are not JSON, although Python writes them)."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    return json.loads(text, parse_constant=_reject_constant)


def decode_object(data: bytes | str) -> dict | None:
    """The JSON object one message holds, or None when it holds none (not UTF-8, not JSON, not an object)."""
    try:
        value = decode(data)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return value if isinstance(value, dict) else None


def request(a: int, b: int, id: Any = NO_ID, dialect: str = "course") -> bytes:
    """The request payload for a + b: b'{"A":7,"B":4}', with "id" first when given ("course" only)."""
    _check_dialect(dialect)
    if dialect == "seed002" and id is not NO_ID:
        raise ValueError("seed 002's protocol has no id; leave id out for dialect='seed002'")
    body = {} if id is NO_ID else {"id": id}
    body.update({"A": a, "B": b})
    return encode(body)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number with a fraction or exponent",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _snippet(data: bytes | str, limit: int = 40) -> str:
    return repr(data[:limit]) + ("..." if len(data) > limit else "")


def parse_request(data: bytes | str, dialect: str = "course") -> Request:
    """Decode one request message (without its framing: no b'\\n' needed, but whitespace around the
    JSON is allowed). "course" raises BadRequest naming what is wrong; "seed002" never raises: it
    returns what Go's json.Unmarshal fills in, with the error it returned in `ignored`."""
    _check_dialect(dialect)
    if dialect == "seed002":
        return _parse_go(data)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("not-utf8", f"the request is not UTF-8 text (byte {exc.start}): {_snippet(data)}") from None
    else:
        text = data
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer too long to convert
        # the wording of assignment 04's tcp-sum, whose notebook shows it: b'hello' is answered
        # {"Error":"the request is not JSON: Expecting value: line 1 column 1 (char 0)"}
        raise BadRequest("not-json", f"the request is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("not-object", f"a request is a JSON object such as {EXAMPLE}, got {_type_name(body)}: {_snippet(text)}")
    id = body.get("id", NO_ID)
    missing = [k for k in ("A", "B") if k not in body]
    if missing:
        raise BadRequest("missing", f"the request has no {' and no '.join(json.dumps(k) for k in missing)}; "
                                    f"a request is {EXAMPLE}", id, missing)
    wrong = [k for k in ("A", "B") if type(body[k]) is not int]  # bool is a subclass of int: excluded on purpose
    if wrong:
        key, value = wrong[0], body[wrong[0]]
        raise BadRequest("not-integer", f"{key} must be an integer, got {json.dumps(value, ensure_ascii=False)[:40]} "
                                        f"({_type_name(value)})", id, wrong)
    return Request(body["A"], body["B"], id)


def _parse_go(data: bytes | str) -> Request:
    """json.Unmarshal(data, &struct{A int; B int}{}) as Go does it, and the error it returns."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    # Go accepts invalid UTF-8 inside strings (as U+FFFD); outside strings it is a syntax error.
    # surrogateescape keeps such bytes as lone surrogates, which the JSON parser accepts in strings only.
    text = data.decode("utf-8", "surrogateescape")
    try:
        pairs = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_reject_constant,
                           parse_int=_GoNumber.int_literal, parse_float=_GoNumber)
    except (ValueError, RecursionError) as exc:
        return Request(0, 0, ignored=f"syntax error: {exc}")  # Go checks the whole input first: nothing filled
    if pairs is None:
        return Request(0, 0)  # null: Unmarshal leaves the struct alone, no error
    if not isinstance(pairs, _Pairs):
        return Request(0, 0, ignored=f"cannot unmarshal {_go_kind(pairs)} into Go value of type Request")
    fields = {"A": 0, "B": 0}
    ignored = None
    for key, value in pairs:
        field = key.upper() if key in ("A", "B", "a", "b") else None
        if field is None or value is None:
            continue  # unknown key (dropped), or null (leaves the field alone)
        if isinstance(value, _GoNumber) and value.as_int64() is not None:
            fields[field] = value.as_int64()
        elif ignored is None:
            ignored = f"cannot unmarshal {_go_kind(value)} into Go struct field Request.{field} of type int"
    return Request(fields["A"], fields["B"], ignored=ignored)


class _Pairs(list):
    """A JSON object as the (key, value) pairs it was written with, duplicates and order kept."""


class _GoNumber(str):
    """A JSON number literal kept as written, so that it can be judged as Go's strconv.ParseInt does."""

    @classmethod
    def int_literal(cls, text: str) -> "_GoNumber":
        return cls(text)

    def as_int64(self) -> int | None:
        if any(c in self for c in ".eE") or len(self) > 20:
            return None
        value = int(self)
        return value if INT64_MIN <= value <= INT64_MAX else None


def _go_kind(value: Any) -> str:
    if isinstance(value, _GoNumber):
        return f"number {value}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _Pairs):
        return "object"
    return "array"


def _wrap64(n: int) -> int:
    return (n - INT64_MIN) % 2**64 + INT64_MIN


def reply(req: Request | int, dialect: str = "course", id: Any = NO_ID) -> bytes:
    """The reply payload to a decoded request (or to a sum): b'{"Sum":11}', b'{"Sum":3,"id":42}' when
    the request had an id ("course"); in "seed002" the sum wraps around as a Go int64 and no id is sent."""
    _check_dialect(dialect)
    if isinstance(req, Request):
        total, id = req.a + req.b, req.id if id is NO_ID else id
    else:
        total = req
    if dialect == "seed002":
        return encode({"Sum": _wrap64(total)})
    body: dict[str, Any] = {"Sum": total}
    if id is not NO_ID:
        body["id"] = id
    return encode(body)


def error_reply(message: str | BadRequest, dialect: str = "course", id: Any = NO_ID) -> bytes:
    """b'{"Error":"<message>"}', with "id" when given (or carried by the BadRequest). Seed 002 has no
    error reply: in "seed002" this raises ValueError (its server answers {"Sum":0} instead)."""
    _check_dialect(dialect)
    if dialect == "seed002":
        raise ValueError("seed 002's server has no error reply; it answers what json.Unmarshal filled in")
    if isinstance(message, BadRequest) and id is NO_ID:
        id = message.id
    body: dict[str, Any] = {"Error": str(message)}
    if id is not NO_ID:
        body["id"] = id
    return encode(body)


def answer(data: bytes | str, dialect: str = "course", *, ids: bool = True) -> bytes:
    """What a server of `dialect` sends back to one message (the payload, without framing).
    `ids=False` keeps "course" from copying the request's id (assignment 04's TCP lines have none)."""
    try:
        req = parse_request(data, dialect)
    except BadRequest as bad:
        return error_reply(str(bad), dialect, bad.id if ids else NO_ID)
    return reply(req if ids else req._replace(id=NO_ID), dialect)


def parse_reply(data: bytes | str) -> dict:
    """The JSON object of one reply payload; PeerError when it is not one (a reply comes from a peer)."""
    try:
        body = decode(data)
    except ValueError as exc:
        raise PeerError(f"the sum server's reply {_snippet(data)} is not JSON ({exc}); it should be like "
                        '{"Sum":11}') from None
    if not isinstance(body, dict) or not (("Sum" in body) ^ ("Error" in body)):
        raise PeerError(f'the sum server\'s reply {_snippet(data)} is neither {{"Sum":...}} nor {{"Error":...}}')
    return body


def frame(payload: bytes, dialect: str = "course") -> bytes:
    """A message as it goes on a TCP stream: payload + b'\\n' ("course"), the payload as is ("seed002")."""
    _check_dialect(dialect)
    if dialect == "course" and b"\n" in payload:
        raise ValueError(f"a line-framed message cannot contain b'\\n': {_snippet(payload)}")
    return payload + b"\n" if dialect == "course" else payload


def split_messages(buffer: bytes, dialect: str = "course") -> tuple[list[bytes], bytes]:
    """Cut what a TCP stream delivered so far into messages: (complete messages, the rest to keep).
    "course": every line (without b'\\n'), the unfinished line kept; "seed002": what one read
    returned is one message, whatever it holds (two requests, half of one), nothing kept."""
    _check_dialect(dialect)
    if dialect == "seed002":
        return ([buffer] if buffer else []), b""
    *lines, rest = buffer.split(b"\n")
    return lines, rest
