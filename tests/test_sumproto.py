"""The sum protocol of seed 002 in one module: both dialects, every malformed kind, compact JSON."""
import json

import pytest

from course import PeerError
from course import sumproto as sp
from course.sumproto import NO_ID, BadRequest, Request


# ----------------------------------------------------------------------------------------------
# "course": strict, optional id, {"Error": ...}
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data, expected", [
    (b'{"A":7,"B":4}', Request(7, 4)),
    ('{"A": 7, "B": 4}', Request(7, 4)),
    (b' {"A":-7,"B":4}\r\n', Request(-7, 4)),  # whitespace around the JSON, a CRLF line from nc/telnet
    (b'{"A":1,"B":2,"C":"other keys are ignored"}', Request(1, 2)),
    (b'{"id":42,"A":1,"B":2}', Request(1, 2, 42)),
    (b'{"id":null,"A":1,"B":2}', Request(1, 2, None)),  # null is an id, not its absence
    (b'{"A":10000000000000000000000,"B":1}', Request(10**22, 1)),
    ('{"A":1,"B":2,"note":"你好"}'.encode(), Request(1, 2)),
])
def test_course_parses_valid_requests(data, expected):
    assert sp.parse_request(data) == expected


@pytest.mark.parametrize("data, kind, words", [
    (b'\xff{"A":1,"B":2}', "not-utf8", "not UTF-8 text (byte 0)"),
    (b"hello", "not-json", "not JSON"),
    (b"", "not-json", "not JSON"),
    (b'{"A":7,"B":4}{"A":7,"B":4}', "not-json", "Extra data"),
    (b'{"A":7,"B":', "not-json", "not JSON"),
    (b'{"A":NaN,"B":1}', "not-json", "NaN is not JSON"),
    (b'{"A":Infinity,"B":1}', "not-json", "Infinity is not JSON"),
    (b"[7,4]", "not-object", "got an array"),
    (b"null", "not-object", "got null"),
    (b"11", "not-object", "got a number"),
    (b'{"A":7}', "missing", 'no "B"'),
    (b"{}", "missing", 'no "A" and no "B"'),
    (b'{"a":7,"b":4}', "missing", 'no "A" and no "B"'),  # exact names: the course is strict
    (b'{"A":"7","B":4}', "not-integer", 'A must be an integer, got "7" (a string)'),
    (b'{"A":true,"B":4}', "not-integer", "A must be an integer, got true (a boolean)"),
    (b'{"A":7,"B":4.0}', "not-integer", "B must be an integer, got 4.0"),
    (b'{"A":7,"B":1e2}', "not-integer", "B must be an integer, got 100.0"),
    (b'{"A":null,"B":4}', "not-integer", "got null"),
    (b'{"A":[7],"B":4}', "not-integer", "(an array)"),
])
def test_course_names_every_malformed_kind(data, kind, words):
    with pytest.raises(BadRequest) as info:
        sp.parse_request(data)
    assert info.value.kind == kind and kind in BadRequest.KINDS
    assert words in str(info.value)
    reply = json.loads(sp.answer(data))
    assert list(reply) == ["Error"] and reply["Error"] == str(info.value)


def test_course_replies_are_compact_and_echo_the_id():
    # the line assignment 04's notebook shows tcp-sum answering to b"hello": unchanged but for spacing
    assert sp.answer(b"hello", ids=False) == b'{"Error":"the request is not JSON: Expecting value: line 1 column 1 (char 0)"}'
    assert sp.answer(b'{"A":7,"B":4}') == b'{"Sum":11}'
    assert sp.answer(b'{"id":42,"A":1,"B":2}') == b'{"Sum":3,"id":42}'
    assert sp.answer(b'{"id":"\xe4\xbd\xa0","A":1,"B":2}') == '{"Sum":3,"id":"你"}'.encode()
    assert sp.answer(b'{"id":0,"A":1,"B":2}') == b'{"Sum":3,"id":0}'  # a falsy id is still an id
    assert sp.answer(b'{"id":[1,2],"A":true,"B":2}') == b'{"Error":"A must be an integer, got true (a boolean)","id":[1,2]}'
    assert sp.answer(b'{"id":42,"A":1,"B":2}', ids=False) == b'{"Sum":3}'
    assert sp.answer(b'{"id":42,"A":"1","B":2}', ids=False) == b'{"Error":"A must be an integer, got \\"1\\" (a string)"}'
    for payload in (sp.answer(b'{"A":7,"B":4}'), sp.answer(b"hello"), sp.answer(b'{"id":1,"A":1,"B":2}')):
        assert payload == sp.encode(json.loads(payload))  # exactly the compact form


def test_request_reply_and_error_builders():
    assert sp.request(7, 4) == b'{"A":7,"B":4}'
    assert sp.request(1, 2, id=5) == b'{"id":5,"A":1,"B":2}'
    assert sp.request(7, 4, dialect="seed002") == b'{"A":7,"B":4}'
    with pytest.raises(ValueError, match="no id"):
        sp.request(1, 2, id=5, dialect="seed002")
    assert sp.reply(11) == b'{"Sum":11}'
    assert sp.reply(Request(1, 2, "x")) == b'{"Sum":3,"id":"x"}'
    assert sp.error_reply("bad") == b'{"Error":"bad"}'
    assert sp.error_reply("bad", id=None) == b'{"Error":"bad","id":null}'
    with pytest.raises(ValueError, match="no error reply"):
        sp.error_reply("bad", "seed002")
    with pytest.raises(ValueError, match="unknown sum-protocol dialect 'go'"):
        sp.answer(b"{}", "go")
    assert repr(NO_ID) == "NO_ID" and not NO_ID


def test_parse_reply_accepts_a_reply_and_blames_the_peer_otherwise():
    assert sp.parse_reply(b'{"Sum":11}') == {"Sum": 11}
    assert sp.parse_reply(b'{"Error":"x","id":1}') == {"Error": "x", "id": 1}
    for bad in (b"11", b'{"Sum":1,"Error":"x"}', b"{}", b"\xff"):
        with pytest.raises(PeerError):
            sp.parse_reply(bad)


def test_bad_request_names_the_fields_at_fault():
    def keys(data):
        with pytest.raises(BadRequest) as info:
            sp.parse_request(data)
        return info.value.kind, info.value.keys

    assert keys(b'{"A":7}') == ("missing", ("B",))
    assert keys(b'{"id":3}') == ("missing", ("A", "B"))
    assert keys(b'{"A":"7","B":4}') == ("not-integer", ("A",))
    assert keys(b'{"A":1.5,"B":2.5}') == ("not-integer", ("A", "B"))  # the sentence names A only
    assert "B" not in str(pytest.raises(BadRequest, sp.parse_request, b'{"A":1.5,"B":2.5}').value)
    assert keys(b"hello") == ("not-json", ()) and keys(b"[1]") == ("not-object", ())


@pytest.mark.parametrize("data, value", [
    (b'{"Sum": 11, "id": 1}', {"Sum": 11, "id": 1}),  # spaced as Python's json.dumps writes it
    (b'{"Sum":11}', {"Sum": 11}),
    ('{"id":"你"}', {"id": "你"}),
    (b"[1, 2]", [1, 2]),
    (b" 7 \n", 7),
])
def test_decode_reads_any_spacing(data, value):
    assert sp.decode(data) == value
    assert sp.decode_object(data) == (value if isinstance(value, dict) else None)


@pytest.mark.parametrize("data", [b"hello", b"", b"\xff{}", b'{"Sum":NaN}', b'{"A":1,', b'{"A":Infinity}'])
def test_decode_refuses_what_is_not_utf8_json(data):
    with pytest.raises(ValueError):
        sp.decode(data)
    assert sp.decode_object(data) is None


def test_framing_of_each_dialect():
    assert sp.frame(b'{"Sum":11}') == b'{"Sum":11}\n'
    assert sp.frame(b'{"Sum":11}', "seed002") == b'{"Sum":11}'
    with pytest.raises(ValueError):
        sp.frame(b"a\nb")
    assert sp.split_messages(b'{"A":1,"B":2}\n{"A":3,') == ([b'{"A":1,"B":2}'], b'{"A":3,')
    assert sp.split_messages(b"a\nb\n") == ([b"a", b"b"], b"")
    # seed 002: whatever one read returned is one request, two glued ones or half of one
    assert sp.split_messages(b'{"A":7,"B":4}{"A":7,"B":4}', "seed002") == ([b'{"A":7,"B":4}{"A":7,"B":4}'], b"")
    assert sp.split_messages(b"", "seed002") == ([], b"")


# ----------------------------------------------------------------------------------------------
# "seed002": Go's json.Unmarshal into struct{A int; B int}, error ignored, no id
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data, reply, ignored", [
    (b'{"A":7,"B":4}', b'{"Sum":11}', None),
    (b'{"A":7,"B":4}\n', b'{"Sum":11}', None),  # what nc sends: the newline is whitespace to Go
    (b"hello", b'{"Sum":0}', "syntax error"),
    (b"", b'{"Sum":0}', "syntax error"),
    (b'{"A":7,"B":4}{"A":7,"B":4}', b'{"Sum":0}', "syntax error"),  # two requests in one read
    (b'{"A":7,"B', b'{"Sum":0}', "syntax error"),  # half a request
    (b'{"A":"7","B":4}', b'{"Sum":4}', "cannot unmarshal string into Go struct field Request.A of type int"),
    (b'{"A":1.5,"B":4}', b'{"Sum":4}', "cannot unmarshal number 1.5"),
    (b'{"A":7.0,"B":4}', b'{"Sum":4}', "cannot unmarshal number 7.0"),
    (b'{"A":7,"B":1e2}', b'{"Sum":7}', "cannot unmarshal number 1e2"),
    (b'{"A":true,"B":4}', b'{"Sum":4}', "cannot unmarshal bool"),
    (b'{"A":{"x":1},"B":4}', b'{"Sum":4}', "cannot unmarshal object"),
    (b'{"A":[1],"B":4}', b'{"Sum":4}', "cannot unmarshal array"),
    (b'{"A":9223372036854775808,"B":4}', b'{"Sum":4}', "cannot unmarshal number 9223372036854775808"),
    (b'{"A":null,"B":4}', b'{"Sum":4}', None),  # null leaves the field alone, no error
    (b"null", b'{"Sum":0}', None),
    (b"[7,4]", b'{"Sum":0}', "cannot unmarshal array into Go value of type Request"),
    (b"11", b'{"Sum":0}', "cannot unmarshal number 11 into Go value"),
    (b'{"a":7,"b":4}', b'{"Sum":11}', None),  # field names match without case
    (b'{"A":1,"a":2,"B":0}', b'{"Sum":2}', None),  # a later duplicate wins
    (b'{"A":5,"A":"x","B":0}', b'{"Sum":5}', "cannot unmarshal string"),  # a failed one leaves it
    (b'{"id":42,"A":1,"B":2}', b'{"Sum":3}', None),  # no id in seed 002: dropped
    (b'{"A":9223372036854775807,"B":1}', b'{"Sum":-9223372036854775808}', None),  # int64 wraps
    (b'{"A":1,"B":2,"x":"\xff"}', b'{"Sum":3}', None),  # Go accepts bad UTF-8 inside a string
    (b'\xff{"A":1,"B":2}', b'{"Sum":0}', "syntax error"),  # and refuses it outside one
    (b'{"A":NaN,"B":2}', b'{"Sum":0}', "syntax error"),
])
def test_seed002_decodes_as_go_does(data, reply, ignored):
    req = sp.parse_request(data, "seed002")
    assert req.id is NO_ID
    if ignored is None:
        assert req.ignored is None
    else:
        assert ignored in req.ignored
    assert sp.answer(data, "seed002") == reply


def test_seed002_takes_str_and_bytes_alike():
    assert sp.parse_request('{"A":7,"B":4}', "seed002") == Request(7, 4)
    assert sp.answer(b'{"A":7,"B":4}', "seed002") == b'{"Sum":11}'  # exactly what the seed's server writes
