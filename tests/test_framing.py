"""course.framing: pure framing logic fed arbitrary chunks (no sockets), then the reference socket
functions over a real loopback connection."""
import socket
import struct

import pytest
from hypothesis import given, settings, strategies as st

from course import framing
from course.buffers import tcp_pair
from course.framing import (
    IncompleteMessage,
    LineSplitter,
    LineTooLong,
    MessageDecoder,
    MessageTooLong,
    encode_message,
    encode_messages,
    split_into_chunks,
)

payloads = st.lists(st.binary(max_size=300), max_size=12)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted(p % (len(data) + 1) for p in points), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


# ----------------------------------------------------------------------------------------------
# Length prefix
# ----------------------------------------------------------------------------------------------
def test_encode_is_big_endian_length_then_payload():
    assert encode_message(b"hello") == b"\x00\x00\x00\x05hello"
    assert encode_message(b"") == b"\x00\x00\x00\x00"
    assert encode_message(b"x" * 258)[:4] == b"\x00\x00\x01\x02"


def test_encode_refuses_more_than_max_size():
    with pytest.raises(MessageTooLong, match="max_size=4"):
        encode_message(b"12345", max_size=4)


def test_decoder_holds_a_partial_message_until_the_rest_comes():
    decoder = MessageDecoder()
    assert decoder.feed(b"\x00\x00") == [] and decoder.has_partial and decoder.expected() == 4
    assert decoder.feed(b"\x00\x05hel") == [] and decoder.expected() == 9 and decoder.buffered == 7
    assert decoder.feed(b"lo\x00\x00\x00\x00\x00") == [b"hello", b""]
    assert decoder.has_partial
    with pytest.raises(IncompleteMessage) as info:
        decoder.end_of_stream()
    assert info.value.expected == 4 and info.value.partial == b"\x00"
    assert isinstance(info.value, ConnectionError)


def test_decoder_end_of_stream_between_messages_is_fine():
    decoder = MessageDecoder()
    assert decoder.feed(encode_messages([b"a", b"b"])) == [b"a", b"b"]
    assert not decoder.has_partial
    decoder.end_of_stream()


def test_decoder_refuses_a_length_beyond_max_size_and_hints_at_byte_order():
    decoder = MessageDecoder(max_size=1000)
    with pytest.raises(MessageTooLong, match="big-endian"):
        decoder.feed(struct.pack("<I", 5) + b"hello")


@settings(max_examples=200, derandomize=True, database=None)
@given(messages=payloads, points=st.lists(st.integers(0, 10_000), max_size=20))
def test_decoder_gives_the_same_messages_however_the_stream_is_cut(messages, points):
    stream = encode_messages(messages)
    decoder = MessageDecoder()
    got = [m for chunk in cut(stream, points) for m in decoder.feed(chunk)]
    assert got == messages and not decoder.has_partial


def test_decoder_one_byte_at_a_time():
    stream = encode_messages([b"one", b"", b"three"])
    decoder = MessageDecoder()
    assert [m for chunk in split_into_chunks(stream, [1]) for m in decoder.feed(chunk)] == [b"one", b"", b"three"]


# ----------------------------------------------------------------------------------------------
# Delimiter
# ----------------------------------------------------------------------------------------------
def test_splitter_keeps_the_tail_between_chunks():
    s = LineSplitter()
    assert s.feed(b"hel") == [] and s.pending == b"hel"
    assert s.feed(b"lo\nwor") == [b"hello"] and s.pending == b"wor"
    assert s.feed(b"ld\n\nx") == [b"world", b""] and s.pending == b"x" and s.has_partial
    with pytest.raises(IncompleteMessage, match="line"):
        s.end_of_stream()


def test_splitter_strips_only_the_delimiter():
    assert LineSplitter().feed(b"a\r\nb\n") == [b"a\r", b"b"]
    assert LineSplitter(delimiter=b"\r\n").feed(b"a\r\nb\nc\r\n") == [b"a", b"b\nc"]


def test_splitter_multibyte_delimiter_cut_in_the_middle():
    s = LineSplitter(max_line=3, delimiter=b"\r\n")
    assert s.feed(b"abc\r") == []  # 3 bytes and half a delimiter: still a legal line
    assert s.feed(b"\n") == [b"abc"]
    with pytest.raises(LineTooLong):
        s.feed(b"abcd")


def test_splitter_line_too_long_complete_or_pending():
    with pytest.raises(LineTooLong, match="max_line=5"):
        LineSplitter(max_line=5).feed(b"123456\n")
    with pytest.raises(LineTooLong, match="without"):
        LineSplitter(max_line=5).feed(b"ok\n123456")
    s = LineSplitter(max_line=5)
    assert s.feed(b"12345") == [] and s.feed(b"\n") == [b"12345"]


def test_splitter_lets_go_of_what_it_held_after_line_too_long():
    s = LineSplitter(max_line=5)
    assert s.feed(b"ok\n1234") == [b"ok"] and s.pending == b"1234"
    with pytest.raises(LineTooLong):
        s.feed(b"56")
    assert s.pending == b""
    s = LineSplitter(max_line=5)
    with pytest.raises(LineTooLong):
        s.feed(b"a\n123456\nb")  # the line b"a" before the long one is not returned either
    assert s.pending == b""


def test_splitter_refuses_an_empty_delimiter():
    with pytest.raises(ValueError):
        LineSplitter(delimiter=b"")


@settings(max_examples=200, derandomize=True, database=None)
@given(
    lines=st.lists(st.one_of(st.binary(max_size=20), st.sampled_from([b"a\r", b"\r", b"GET / HTTP/1.1\r"])).map(lambda b: b.replace(b"\n", b"")), max_size=10),
    tail=st.binary(max_size=10).map(lambda b: b.replace(b"\n", b"")),
    points=st.lists(st.integers(0, 10_000), max_size=15),
)
def test_splitter_gives_the_same_lines_however_the_stream_is_cut(lines, tail, points):
    stream = b"".join(line + b"\n" for line in lines) + tail
    s = LineSplitter()
    got = [line for chunk in cut(stream, points) for line in s.feed(chunk)]
    assert got == lines and s.pending == tail


def test_split_into_chunks():
    assert split_into_chunks(b"abcdefg", [2, 3]) == [b"ab", b"cde", b"fg"]
    with pytest.raises(ValueError):
        split_into_chunks(b"abc", [0])


# ----------------------------------------------------------------------------------------------
# Over a real loopback connection
# ----------------------------------------------------------------------------------------------
def test_recv_exactly_loops_and_leaves_the_rest():
    with tcp_pair() as (a, b):
        a.sendall(b"0123456789")
        assert framing.recv_exactly(b, 4) == b"0123"
        assert framing.recv_exactly(b, 0) == b""
        assert framing.recv_exactly(b, 6) == b"456789"


def test_recv_exactly_raises_incomplete_message_on_eof():
    with tcp_pair() as (a, b):
        a.sendall(b"abc")
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(IncompleteMessage) as info:
            framing.recv_exactly(b, 5)
    assert info.value.expected == 5 and info.value.partial == b"abc"
    assert "3 of the 5 bytes" in str(info.value)


def test_recv_exactly_refuses_a_negative_count():
    with tcp_pair() as (a, b), pytest.raises(ValueError):
        framing.recv_exactly(b, -1)


def test_send_and_recv_message_round_trip_with_clean_close():
    with tcp_pair() as (a, b):
        for m in [b"hello", b"", b"x" * 100_000]:
            framing.send_message(a, m)
        a.shutdown(socket.SHUT_WR)
        assert [framing.recv_message(b) for _ in range(4)] == [b"hello", b"", b"x" * 100_000, None]


@pytest.mark.parametrize("cut_at, expected", [(2, 4), (7, 9)], ids=["in-header", "in-payload"])
def test_recv_message_cut_short_raises(cut_at, expected):
    with tcp_pair() as (a, b):
        a.sendall(encode_message(b"hello")[:cut_at])
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(IncompleteMessage) as info:
            framing.recv_message(b)
    assert info.value.expected == expected and len(info.value.partial) == cut_at


def test_recv_message_refuses_a_length_beyond_max_size():
    with tcp_pair() as (a, b):
        a.sendall(struct.pack("!I", 2000))
        with pytest.raises(MessageTooLong):
            framing.recv_message(b, max_size=1000)


def test_framing_module_opens_no_socket():
    import inspect

    pure = inspect.getsource(MessageDecoder) + inspect.getsource(LineSplitter)
    assert "socket" not in pure
