"""course.capture: the parser on bytes, a live capture of one connection on lo (where this process
may capture), the recordings in course/data, the labels, and the check of a learner's labels."""
from __future__ import annotations

import json
import socket
import struct

import pytest

from course import capture
from course.checks import capture as capture_check
from course.capture import CaptureNotAllowed, Segment, label_segments, parse_frame, parse_ipv4_tcp
from course.errors import YourCodeError

LIVE = capture.allowed()
needs_capture = pytest.mark.skipif(not LIVE, reason="this process may not open a packet socket (needs root or CAP_NET_RAW)")


def tcp_packet(sport=40000, dport=5000, seq=1000, ack=0, flags=0x02, window=65535, options=b"", payload=b""):
    """An IPv4 packet carrying one TCP segment, built by hand (checksums left at 0)."""
    while len(options) % 4:
        options += b"\x00"
    offset = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIHHHH", sport, dport, seq, ack, (offset << 12) | flags, window, 0, 0) + options + payload
    total = 20 + len(tcp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0, socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.2"))
    return ip + tcp


def test_parse_a_syn_with_mss_option():
    mss = b"\x02\x04" + struct.pack("!H", 1460)
    seg = parse_ipv4_tcp(tcp_packet(options=b"\x01\x01" + mss))
    assert seg["flags"] == "SYN" and seg["seq"] == 1000 and seg["mss"] == 1460
    assert seg["src"] == ("127.0.0.1", 40000) and seg["dst"] == ("127.0.0.2", 5000)
    assert seg["header_length"] == 28 and seg["length"] == 0


def test_parse_data_with_flags_in_wireshark_order():
    seg = parse_ipv4_tcp(tcp_packet(flags=0x18, seq=1001, ack=8001, payload=b"x" * 20))
    assert seg["flags"] == "PSH,ACK" and seg["length"] == 20 and seg["ack"] == 8001
    assert parse_ipv4_tcp(tcp_packet(flags=0x11))["flags"] == "FIN,ACK"
    assert parse_ipv4_tcp(tcp_packet(flags=0x14))["flags"] == "RST,ACK"


def test_parse_frame_skips_the_loopback_ethernet_header_and_ignores_other_protocols():
    frame = b"\x00" * 12 + b"\x08\x00" + tcp_packet(flags=0x12, ack=1001)
    assert parse_frame(frame)["flags"] == "SYN,ACK"
    assert parse_frame(b"\x00" * 12 + b"\x86\xdd" + b"\x60" + b"\x00" * 39) is None  # IPv6
    udp = bytearray(tcp_packet())
    udp[9] = 17
    assert parse_frame(b"\x00" * 12 + b"\x08\x00" + bytes(udp)) is None


@pytest.mark.parametrize(
    "packet, says",
    [
        (b"\x45" + b"\x00" * 10, "too short"),
        (b"\x65" + tcp_packet()[1:], "not IPv4"),
        (tcp_packet()[:30], "cut short"),
        (tcp_packet(options=b"\x02\x09\x05\xb4"), "malformed TCP option"),
    ],
)
def test_malformed_packets_raise_value_error(packet, says):
    with pytest.raises(ValueError, match=says):
        parse_ipv4_tcp(packet)


def test_port_filter_is_a_whole_number_of_bpf_instructions():
    prog = capture.port_filter(4242)
    assert len(prog) % 8 == 0 and struct.pack("I", 4242) in prog


def test_recordings_are_real_captures_with_a_handshake_and_say_they_are_recordings():
    for scenario in capture.RECORDINGS:
        conv = capture.load_recording(scenario)
        assert not conv.live and "RECORDING" in conv.note
        assert conv.segments[0].flags == "SYN" and conv.segments[0].mss == 65495
        data = json.loads(capture.RECORDINGS[scenario].read_text())
        assert data["how"].startswith("course.capture.capture_live")


def test_recorded_labels():
    labels = label_segments(capture.load_recording("client closes first").segments)
    assert labels[:3] == ["handshake 1: SYN", "handshake 2: SYN-ACK", "handshake 3: ACK"]
    assert labels[-4:] == ["teardown 1: FIN", "teardown 2: ACK", "teardown 3: FIN", "teardown 4: ACK"]
    assert label_segments(capture.load_recording("connection refused").segments) == ["handshake 1: SYN", "RST"]


def test_relative_numbers_follow_wireshark():
    rel = capture.relative(capture.load_recording("client closes first").segments)
    assert [(s.seq, s.ack) for s in rel[:3]] == [(0, 0), (0, 1), (1, 1)]
    data = [s for s in rel if s.length == 20][0]
    acks = [s for s in rel if s.sender == "server" and s.ack == data.seq + 20]
    assert acks, "the server acknowledges the 20 bytes with seq + 20"


def test_conversation_falls_back_to_the_recording_without_permission(monkeypatch):
    def refuse():
        raise CaptureNotAllowed("no CAP_NET_RAW in this test")

    monkeypatch.setattr(capture, "open_packet_socket", refuse)
    conv = capture.conversation("server closes first")
    assert not conv.live and conv.note.startswith("This is a RECORDING")
    with pytest.raises(CaptureNotAllowed):
        with capture.Capture(80):  # fixed-port-ok: never bound, the capture is refused first
            pass


@needs_capture
@pytest.mark.parametrize("scenario", list(capture.RECORDINGS))
def test_live_capture_sees_each_segment_once(scenario):
    conv = capture.capture_live(scenario)
    segs = conv.segments
    assert conv.live and segs[0].flags == "SYN" and segs[0].sender == "client"
    assert sum(s.has("SYN") and not s.has("ACK") for s in segs) == 1, "the SYN was counted once"
    keys = [(s.sender, s.flags, s.seq, s.ack, s.length) for s in segs]
    assert len(keys) == len(set(keys)), f"a segment appears twice: {keys}"
    if scenario == "connection refused":
        assert [s.flags for s in segs] == ["SYN", "RST,ACK"]
    else:
        assert label_segments(segs)[:3] == ["handshake 1: SYN", "handshake 2: SYN-ACK", "handshake 3: ACK"]
        assert sorted(s.length for s in segs if s.length) == [10, 20]
        assert label_segments(segs)[-1] == "teardown 4: ACK"


@needs_capture
def test_capture_follows_only_the_first_connection_to_its_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with capture.Capture(listener.getsockname()[1], timeout=2.0) as cap:
            for _ in range(2):
                with socket.create_connection(listener.getsockname(), timeout=2):
                    s, _ = listener.accept()
                    s.close()
    ports = {cap.client[1]}
    assert len(ports) == 1 and sum(x.flags == "SYN" for x in cap.segments) == 1
    assert cap.finished


def test_a_capture_without_connection_stops_at_its_deadline():
    if not LIVE:
        pytest.skip("no packet capture here")
    with socket.socket() as idle:
        idle.bind(("127.0.0.1", 0))
        with capture.Capture(idle.getsockname()[1], timeout=0.2) as cap:
            pass
    assert cap.segments == [] and not cap.finished


# ----------------------------------------------------------------------------------------------
# The check of a learner's label_segments
# ----------------------------------------------------------------------------------------------
def test_check_labels_passes_the_reference():
    capture_check.check_labels(label_segments)
    capture_check.check_labels(label_segments, hidden=True)


def test_check_labels_fails_a_labeller_without_step_numbers():
    def plain(segments):
        return ["SYN" if s.has("SYN") and not s.has("ACK") else "other" for s in segments]

    with pytest.raises(YourCodeError, match=r"segment 1 \(client \[SYN\].*is 'handshake 1: SYN', you said 'SYN'"):
        capture_check.check_labels(plain)


def test_hidden_check_catches_every_pure_ack_called_handshake_3():
    def greedy(segments):
        labels = label_segments(segments)
        return ["handshake 3: ACK" if l == "ACK" else l for l in labels]

    with pytest.raises(YourCodeError, match="window update|you said 'handshake 3: ACK'"):
        capture_check.check_labels(greedy, hidden=True)


def test_segments_from_conversation_use_seqack_numbers():
    segs = capture.segments_from_conversation([("client", "SYN", 0), ("server", "SYN,ACK", 0)], 1000, 8000)
    assert [(s.seq, s.ack) for s in segs] == [(1000, 0), (8000, 1001)]
    assert isinstance(segs[0], Segment) and segs[0].mss == 65495


def test_label_shapes_settle_which_ack_answers_which_fin():
    # a labeller that calls "the first pure ACK after a FIN" the teardown ACK, ignoring numbers and
    # sender, agrees with every recording but not with a simultaneous close or a late data ACK
    sim, lags = capture_check.LAGGING_SHAPES["simultaneous close: both FINs, then both ACKs"]
    labels = label_segments(capture_check.lagging_segments(sim, lags, 77, 4294967200))
    assert labels[5:] == ["teardown 1: FIN", "teardown 3: FIN", "teardown 4: ACK", "teardown 2: ACK"]
    late, lags = capture_check.LAGGING_SHAPES["an ACK of earlier data after the first FIN"]
    assert label_segments(capture_check.lagging_segments(late, lags, 1, 2))[5:8] == ["teardown 1: FIN", "ACK", "teardown 2: ACK"]


def test_data_on_the_third_segment_completes_the_handshake():
    segs = capture.segments_from_conversation(capture_check.ODD_SHAPES["data on the third handshake segment (seed 002), then a window update"])
    assert label_segments(segs)[2:4] == ["data", "ACK"]


def test_check_labels_catches_a_positional_teardown_labeller():
    def by_position(segments):
        out, pending = [], 0
        for label in label_segments(segments):
            if label in ("teardown 2: ACK", "teardown 4: ACK", "ACK") and pending:
                out.append("teardown 2: ACK" if pending == 1 and "teardown 2: ACK" not in out else "teardown 4: ACK")
                pending -= 1
                continue
            if label in ("teardown 1: FIN", "teardown 3: FIN"):
                pending += 1
            out.append(label)
        return out

    capture_check.check_labels(by_position)  # the recording agrees
    with pytest.raises(YourCodeError, match="simultaneous close|earlier data"):
        capture_check.check_labels(by_position, hidden=True)


def test_old_name_of_the_check_still_works():
    # notebooks of earlier releases call capture.check_labels: it forwards to course.checks.capture
    assert capture.check_labels is capture_check.check_labels
