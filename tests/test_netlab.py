"""course.netlab: the lab network without root (issue #11, phase 1), and what its lessons share.

The first tests need no namespaces (the nftables text, the refusal sentences, pcap files, the
readers of a capture, course.netlab.lesson's fallback and recordings). The others build real labs
as an ordinary user (tests/lab_support.py: as root, an unused uid with setpriv, /usr/bin/python3
and a readable copy of `course/`, that uid and that interpreter asserted). Where no lab can be built
they are skipped, except under CI (the environment variable CI set), where that is a failure.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from course.deadline import wait_for
from course.errors import PeerError, SetupError
from course.netlab import lab as lab_module
from course.netlab import lesson
from course.netlab.pcap import (
    Frame,
    TcpPacket,
    datagram_fragments,
    datagrams,
    icmp_messages,
    neighbour_messages,
    parse_packet,
    read_pcap,
    retransmissions,
    tcp_connections,
    tcp_packets,
    tcp_segments,
    write_pcap,
)
from course.netlab.rules import Loss, filter_rules, loss_rules, nat_rules, parse_rate, tbf_command
from lab_support import IN_CI, SYSTEM_PYTHON, ipv4, ipv6, refusing_sandboxes, tcp, tcp6, udp_packet


# ----------------------------------------------------------------------------------------------
# Without namespaces
# ----------------------------------------------------------------------------------------------
def test_a_chosen_packet_is_the_nth_that_reaches_the_rule_and_tcp_data_is_payload_only():
    loss = Loss.packet(3, of="tcp-data")
    assert loss.verdict() == "numgen inc mod 4294967295 == 2 counter drop"
    matches = loss.matches()
    assert len(matches) == 11  # one per TCP data offset, 5..15 words
    assert "tcp doff 5 ip length > 40" in matches[0] and "tcp doff 8 ip length > 52" in matches[3]
    assert all("tcp flags & (syn | rst) == 0" in m and "ip hdrlength 5" in m for m in matches)
    assert str(loss) == "the 3rd TCP segment with data"
    assert Loss.random(0.25, of="udp").verdict() == "numgen random mod 1000000 < 250000 counter drop"
    assert Loss.random(1.0).verdict() == "counter drop" and Loss.random(0.0).verdict() is None
    assert "drop" not in loss_rules("eth0", Loss.random(0.0))
    assert str(Loss.packet(11, of="ip")) == "the 11th IPv4 packet"
    script = loss_rules("lan0", loss, first=True)
    assert 'add rule inet lab prerouting iifname "lan0" jump loss_lan0_in' in script
    assert "priority -500" in script and script.count("jump loss_lan0\n") == 11
    cleared = loss_rules("lan0", None)
    assert "flush chain inet lab loss_lan0" in cleared and "drop" not in cleared and "iifname" not in cleared
    assert 'oifname "wan0" masquerade' in nat_rules("wan0")


def test_a_loss_from_the_nth_packet_on_loses_that_one_and_every_one_after_it():
    loss = Loss.packets_from(3, of="tcp-data")
    assert loss.verdict() == "numgen inc mod 4294967295 >= 2 counter drop"
    assert str(loss) == "the 3rd TCP segment with data and every one after it"
    assert loss.matches() == Loss.packet(3, of="tcp-data").matches()  # the same packets count as for Loss.packet
    assert "numgen inc mod 4294967295 >= 0 counter drop" in loss_rules("lan0", Loss.packets_from(1, of="tcp"))


@pytest.mark.parametrize("bad", [dict(), dict(nth=0), dict(nth=2, probability=0.5), dict(probability=1.5), dict(nth=1, of="icmp"),
                                 dict(probability=0.5, onward=True)])
def test_a_loss_is_one_chosen_packet_or_a_probability(bad):
    with pytest.raises(ValueError):
        Loss(**bad)


def test_a_filter_rule_counts_what_it_matches_and_drops_it_only_when_asked():
    first = filter_rules("input", 'iifname "wan0" ct state new', first=True)
    assert first.startswith("table inet lab {\n  chain input { type filter hook input priority 0; policy accept; }\n}\n")
    assert first.endswith('add rule inet lab input iifname "wan0" ct state new counter\n')
    again = filter_rules("forward", "udp dport 9", drop=True)
    assert again == "add rule inet lab forward udp dport 9 counter drop\n"
    with pytest.raises(ValueError):
        filter_rules("prerouting", "udp dport 9")


def test_rates_and_the_token_bucket():
    assert parse_rate("10mbit") == 10_000_000 and parse_rate(512_000) == 512_000 and parse_rate("1.5Mbit") == 1_500_000
    for bad in ("fast", "10mbps", 100, True):
        with pytest.raises(ValueError):
            parse_rate(bad)
    cmd = tbf_command("eth0", 8_000_000, 1500)
    assert cmd[:6] == ["tc", "qdisc", "replace", "dev", "eth0", "root"] and "8000000bit" in cmd
    assert int(cmd[cmd.index("burst") + 1]) >= 2 * 1514
    assert tbf_command("eth0", None, 1500) == ["tc", "qdisc", "del", "dev", "eth0", "root"]


NO_SYSCTLS = {"kernel.apparmor_restrict_unprivileged_userns": None, "kernel.unprivileged_userns_clone": None,
              "user.max_user_namespaces": "15000"}


@pytest.mark.parametrize("stage, err, sysctls, expect", [
    ("unshare", 28, {**NO_SYSCTLS, "user.max_user_namespaces": "0"}, "user.max_user_namespaces is 0"),
    ("unshare", 1, NO_SYSCTLS, "--security-opt seccomp=unconfined"),
    ("unshare", 1, {**NO_SYSCTLS, "kernel.unprivileged_userns_clone": "0"}, "sysctl -w kernel.unprivileged_userns_clone=1"),
    ("lo", 1, {**NO_SYSCTLS, "kernel.apparmor_restrict_unprivileged_userns": "1"}, "kernel.apparmor_restrict_unprivileged_userns is 1"),
    ("veth", 1, NO_SYSCTLS, "refuses network configuration"),
    ("sysctl", 30, NO_SYSCTLS, "docker run --security-opt systempaths=unconfined"),
    ("tools", 2, NO_SYSCTLS, "apt-get install iproute2"),
])  # fmt: skip
def test_every_refusal_is_one_sentence_that_says_why_and_what_to_do(stage, err, sysctls, expect):
    sentence = lab_module.refusal(stage, err, "the step that failed", sysctls)
    assert expect in sentence
    assert sentence.startswith("no lab network here: the step that failed (")
    assert "\n" not in sentence and sentence.endswith("(notebooks show a recording instead)")


def test_conntrack_lines_of_the_tool_and_of_proc():
    tool = ("udp      17 29 src=192.168.1.2 dst=198.51.100.10 sport=6789 dport=40000 [UNREPLIED] "
            "src=198.51.100.10 dst=203.0.113.1 sport=40000 dport=6789 mark=0 use=1")
    proc = ("ipv4     2 tcp      6 118 SYN_SENT src=192.168.1.2 dst=198.51.100.10 sport=5000 dport=80 [UNREPLIED] "
            "src=198.51.100.10 dst=203.0.113.1 sport=80 dport=1024 mark=0 zone=0 use=2")
    a, b = lab_module.ConntrackEntry.parse(tool), lab_module.ConntrackEntry.parse(proc)
    assert a.proto == "udp" and a.original == (("192.168.1.2", 6789), ("198.51.100.10", 40000))
    assert a.reply == (("198.51.100.10", 40000), ("203.0.113.1", 6789))
    assert b.proto == "tcp" and b.reply[1] == ("203.0.113.1", 1024)
    assert lab_module.ConntrackEntry.parse("icmp 1 29 src=1.2.3.4 dst=5.6.7.8 type=8 code=0 id=1") is None


@pytest.mark.parametrize("address", ["10.0.0.1/24", "8.8.8.8/32", "127.0.0.2/8", "203.0.114.1/24", "fe80::1/64"])
def test_a_lab_host_takes_lab_addresses_only(address):
    with pytest.raises(SetupError, match="is not a lab address"):
        lab_module._check_address(address)
    assert lab_module._check_address("192.0.2.7/24") == "192.0.2.7/24"


def test_reading_a_capture_handshake_retransmission_fragments_and_pcap(tmp_path):
    c, s = ("192.168.1.2", 40000), ("198.51.100.10", 80)
    talk = [
        tcp(c, s, "SYN", 100, mss=1460), tcp(s, c, "SYN,ACK", 900, 101, mss=1460), tcp(c, s, "ACK", 101, 901),
        tcp(c, s, "ACK", 101, 901, b"a" * 1000), tcp(c, s, "ACK", 1101, 901, b"b" * 1000),
        tcp(c, s, "ACK", 2101, 901, b"c" * 1000), tcp(s, c, "ACK", 901, 1101),
        tcp(c, s, "ACK", 1101, 901, b"b" * 1000),  # the 2nd data segment again
        tcp(s, c, "ACK", 901, 3101),
    ]
    udp_header = struct.pack("!HHHH", 5000, 9000, 8 + 4000, 0)
    body = udp_header + bytes(4000)
    pieces = [ipv4("192.168.1.2", "198.51.100.10", 17, body[i:i + 1480], ident=7, mf=i + 1480 < len(body), offset=i)
              for i in range(0, len(body), 1480)]
    other = ipv4("192.168.1.2", "198.51.100.10", 17, struct.pack("!HHHH", 5001, 9000, 12, 0) + b"solo", ident=7)
    frames = [Frame(1_000_000_000 + i, True, d) for i, d in enumerate(talk + pieces + [other])]
    segments = tcp_segments(frames)
    assert [x.flags for x in segments[:3]] == ["SYN", "SYN,ACK", "ACK"] and segments[0].mss == 1460
    assert retransmissions(segments, "client") == 1 and retransmissions(segments, "server") == 0
    assert datagram_fragments(frames, ("192.168.1.2", 5000), ("198.51.100.10", 9000)) == 3
    assert datagram_fragments(frames, ("192.168.1.2", 5001), ("198.51.100.10", 9000)) == 1
    assert datagram_fragments(frames, ("192.168.1.2", 5002), ("198.51.100.10", 9000)) == 0
    first = parse_packet(frames[len(talk)])
    assert first.fragment and first.more_fragments and first.offset == 0 and parse_packet(frames[-2]).offset == 2960
    path = write_pcap(tmp_path / "x.pcap", frames)
    back = read_pcap(path)
    assert [(f.t_ns, f.data) for f in back] == [(f.t_ns, f.data) for f in frames]
    (conn,) = tcp_connections(frames, server=s)
    assert [seg["flags"] for _, seg in conn[:3]] == ["SYN", "SYN,ACK", "ACK"] and len(conn) == len(talk)
    assert tcp_connections(frames, server=("198.51.100.10", 81)) == []


def test_datagrams_gather_their_fragments_and_a_whole_one_stands_alone():
    body = struct.pack("!HHHH", 40000, 50000, 8 + 2000, 0) + b"attempt 7." + bytes(1990)
    whole = struct.pack("!HHHH", 40000, 50000, 8 + 5, 0) + b"small"
    frames = [udp_packet(9, 1480, body[1480:], False),  # the last piece first: sorted by offset
              udp_packet(9, 0, body[:1480], True, ttl=63),
              udp_packet(0, 0, whole, False, df=True),
              udp_packet(0, 0, whole, False, df=True),  # another whole one with the same identification (0: DF)
              udp_packet(11, 1480, body[1480:], False),  # a datagram whose first fragment is missing
              udp_packet(12, 0, whole, False, src="192.0.2.3")]  # from elsewhere
    found = datagrams([Frame(i, True, f) for i, f in enumerate(frames)], src="192.0.2.2", dst="198.51.100.10")
    assert [(d.ident, len(d.packets), d.udp_size, d.ports) for d in found] == [
        (9, 2, 2000, (40000, 50000)), (0, 1, 5, (40000, 50000)), (0, 1, 5, (40000, 50000)), (11, 1, None, None)]
    first, last = found[0].packets
    assert (first.offset, first.more_fragments, first.dont_fragment, first.ttl) == (0, True, False, 63)
    assert (last.offset, last.more_fragments, last.ttl) == (1480, False, 64)
    assert found[0].udp_data.startswith(b"attempt 7.") and found[1].udp_data == b"small" and found[1].packets[0].dont_fragment
    assert len(datagrams([Frame(0, True, f) for f in frames])) == 5  # from anywhere: the one from 192.0.2.3 too


def test_icmp_messages_say_which_packet_they_are_about():
    about = udp_packet(4242, 0, struct.pack("!HHHH", 40000, 50000, 8 + 1480, 0) + bytes(1472), True)[14:]
    exceeded = bytes([11, 1, 0, 0, 0, 0, 0, 0]) + about[:28]  # time exceeded, fragment reassembly: quotes the header
    echo = bytes([8, 0, 0, 0, 0, 1, 0, 1]) + b"ping"
    frames = [Frame(1, False, ipv4("198.51.100.10", "192.0.2.2", 1, exceeded)), Frame(2, True, ipv4("192.0.2.2", "192.0.2.1", 1, echo))]
    (message,) = icmp_messages(frames, to="192.0.2.2")
    assert (message.type, message.code, message.src, message.outgoing) == (11, 1, "198.51.100.10", False)
    assert message.quoted == ("192.0.2.2", "198.51.100.10", 17, 4242)
    assert [m.quoted for m in icmp_messages(frames)] == [message.quoted, None]  # an echo request quotes nothing


def test_ipv6_addresses_are_the_documentation_prefix_and_only_on_a_host_made_with_ipv6():
    class FakeHost:
        def __init__(self, name, ipv6):
            self.name, self.ipv6 = name, ipv6

    assert lab_module._check_address("2001:db8:1::2/64") == "2001:db8:1::2/64"
    assert lab_module._check_address("2001:DB8:1:0::80/64", FakeHost("www", True)) == "2001:db8:1::80/64"
    with pytest.raises(SetupError, match=r"lab host 'old' has IPv6 off, so it cannot take 2001:db8:1::2/64: make it with "
                                         r"add_host\('old', ipv6=True\)"):
        lab_module._check_address("2001:db8:1::2/64", FakeHost("old", False))
    for outside in ("2001:db9::1/64", "2001::1/32", "::1/128", "fe80::1/64", "fd00::1/64", "::ffff:192.0.2.1/128"):
        with pytest.raises(SetupError, match="is not a lab address"):
            lab_module._check_address(outside, FakeHost("www", True))
    lab_module._check_mtu(576)
    lab_module._check_mtu(1280, ipv6=True)
    with pytest.raises(ValueError, match="at least 1280 bytes"):
        lab_module._check_mtu(1279, ipv6=True)


def test_tcp_packets_of_both_families_and_how_each_finds_its_neighbour():
    client6, server6 = ("2001:db8:1::2", 40000), ("2001:db8:1::80", 8080)
    client4, server4 = ("192.168.1.2", 40001), ("192.168.1.80", 8080)
    solicit = bytes([135, 0, 0, 0, 0, 0, 0, 0]) + socket.inet_pton(socket.AF_INET6, "2001:db8:1::80") + bytes(8)
    advert = bytes([136, 0, 0, 0, 0x60, 0, 0, 0]) + socket.inet_pton(socket.AF_INET6, "2001:db8:1::80") + bytes(8)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, b"\x02" * 6, socket.inet_aton("192.168.1.2"), bytes(6),
                      socket.inet_aton("192.168.1.80"))
    frames = [
        Frame(1, True, ipv6("2001:db8:1::2", "ff02::1:ff00:80", 58, solicit)),
        Frame(2, False, ipv6("2001:db8:1::80", "2001:db8:1::2", 58, advert)),
        Frame(3, True, tcp6(client6, server6, "SYN", 7)),
        Frame(4, False, tcp6(server6, client6, "RST,ACK", 0, 8)),
        Frame(5, True, b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + arp),
        Frame(6, True, tcp(client4, server4, "SYN", 100, mss=1460)),
        Frame(7, False, tcp(server4, client4, "SYN,ACK", 900, 101, mss=1460)),
        Frame(8, True, tcp(client4, ("192.168.1.80", 9), "PSH,ACK", 101, 901, b"other")),
        Frame(9, True, udp_packet(1, 0, b"x" * 16, False)),
    ]
    found = tcp_packets(frames, port=8080)
    assert [(p.version, p.src, p.dst, p.flags, p.outgoing) for p in found] == [
        (6, client6, server6, "SYN", True), (6, server6, client6, "RST,ACK", False),
        (4, client4, server4, "SYN", True), (4, server4, client4, "SYN,ACK", False)]
    assert found[1].ack == 8 and found[0].length == 0 and len(tcp_packets(frames)) == 5
    assert [TcpPacket.where(p.dst) for p in found[:3:2]] == ["[2001:db8:1::80]:8080", "192.168.1.80:8080"]
    assert [(m.kind, m.about, m.src, m.outgoing) for m in neighbour_messages(frames)] == [
        ("neighbour solicitation", "2001:db8:1::80", "2001:db8:1::2", True),
        ("neighbour advertisement", "2001:db8:1::80", "2001:db8:1::80", False),
        ("ARP request", "192.168.1.80", "192.168.1.2", True)]
    assert parse_packet(frames[3]) is None  # the IPv4 readers leave IPv6 alone


# ----------------------------------------------------------------------------------------------
# course.netlab.lesson: live, or else the recording
# ----------------------------------------------------------------------------------------------
def test_the_fallback_gives_the_recording_with_the_refusals_sentence_and_remembers_it_when_asked(capsys):
    calls = []

    def refused():
        calls.append(1)
        raise SetupError("no lab network here: a test refuses it")

    once = lesson.Fallback(say="recording shown, {why}")
    assert [once.run(refused, lambda why: ("recorded", why)) for _ in range(2)] == [("recorded", "no lab network here: a test refuses it")] * 2
    assert len(calls) == 2 and capsys.readouterr().out == "recording shown, no lab network here: a test refuses it\n" * 2
    remembering = lesson.Fallback(remember_refusal=True)
    assert remembering.run(refused, str) == remembering.run(lambda: "live", str) == "no lab network here: a test refuses it"
    assert len(calls) == 3 and capsys.readouterr().out == ""  # nothing printed: the result says why
    remembering.forget()
    assert remembering.run(lambda: "live", str) == "live"


def test_a_live_run_that_fails_falls_back_only_when_asked():
    def broken():
        raise PeerError("the lab's agent (pid 1) did not answer 'exec' within 10.0 s; the lab is closed")

    with pytest.raises(PeerError):
        lesson.Fallback().run(broken, str)
    tolerant = lesson.Fallback(remember_refusal=True, failed_runs=True)
    assert tolerant.run(broken, str) == ("the live run failed, so this is the recording: the lab's agent (pid 1) did not "
                                         "answer 'exec' within 10.0 s; the lab is closed")
    assert tolerant.refused is None  # a failed run is not a refusal: the next run tries a lab again


def test_a_recording_is_written_and_read_back_as_each_live_run_returned_it(tmp_path):
    path = lesson.write_recording(tmp_path / "lab-x.json", "a test, live", {"one": {"capture": "live", "n": [1, 2]}})
    data = lesson.recording(path)
    assert data["how"] == "a test, live" and data["kernel"] == os.uname().release and data["recorded"].endswith(" UTC")
    result = lesson.recorded_result(path, "one")
    assert result == {"capture": "recording", "n": [1, 2], "recorded": f"{data['recorded']} on Linux {data['kernel']}"}
    result["n"].clear()
    assert lesson.recorded_result(path, "one")["n"] == [1, 2]  # each read is a new copy
    assert lesson.source(result, ("a", "b")) == f"the recording, made live on {result['recorded']}"
    live = {"capture": "live", "seconds": 0.25}
    assert lesson.source(live, ("a", "b"), "links of MTU 1500") == "live in the lab (2 network namespaces: a, b; links of MTU 1500; 0.25 s)"


def test_every_lesson_recording_is_in_one_shape():
    for name in ("lab-nat.json", "lab-udp.json", "lab-retransmission.json", "lab-long-short.json", "lab-names.json"):
        data = lesson.recording(lesson.DATA / name)
        assert set(data) == {"recorded", "kernel", "how", "demos"} and data["demos"], name
        assert "live" in data["how"], name


# ----------------------------------------------------------------------------------------------
# Real labs, as an ordinary user
# ----------------------------------------------------------------------------------------------
def holders(inodes: set[int], uid: int) -> list[str]:
    """Processes of `uid` that are in, or hold a descriptor of, any of these network namespaces.
    Only that uid's: the kernel reuses a freed namespace's inode number, and another test running
    at the same time (another uid) may well have a lab with it by now."""
    found = []
    names = {f"net:[{i}]" for i in inodes}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.stat().st_uid != uid:
                continue
            if os.readlink(proc / "ns" / "net") in names:
                found.append(f"{proc.name} is in it")
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in names:
                    found.append(f"{proc.name} holds {fd.name}")
        except OSError:
            continue
    return found


def demo(as_user, *args) -> dict:
    """`python -m course netlab demo --json ARGS`, the command line itself, run by the lab user."""
    _, results = as_user.run(f"""
        import subprocess
        done = subprocess.run([sys.executable, "-m", "course", "netlab", "demo", "--json", *{list(args)!r}],
                              capture_output=True, text=True, timeout=60)
        report({{"status": done.returncode, "out": done.stdout, "err": done.stderr}})
    """)
    assert results[0]["status"] == 0, results[0]["err"]
    lines = results[0]["out"].strip().splitlines()
    assert len(lines) == 1, f"demo --json printed {len(lines)} lines, not one JSON object"
    return json.loads(lines[0])


def test_the_lab_user_is_an_ordinary_user_with_an_interpreter_it_can_read(as_user):
    identity, results = as_user.run("""
        import sysconfig
        before = set(sys.modules)  # what the interpreter itself loaded (site, .pth hooks)
        import course.netlab, course.netlab.demo, course.netlab.lesson, course.netlab.__main__, course.capture, course.kernel
        stdlib = sysconfig.get_paths()["stdlib"]
        outside = sorted(name for name, m in sys.modules.items() if name not in before and getattr(m, "__file__", None)
                         and not m.__file__.startswith((stdlib, os.environ["PYTHONPATH"])))
        report({"outside": outside, "caps": open("/proc/self/status").read().split("CapEff:")[1].split()[0]})
    """)
    assert identity["executable"] == SYSTEM_PYTHON or not as_user.root_mode
    if as_user.root_mode:
        assert identity["uid"] == as_user.uid != 0 and identity["groups"] == []
        assert results[0]["caps"] == "0000000000000000"  # no capability at all outside the lab
    assert results[0]["outside"] == [], f"course.netlab imports modules outside the standard library: {results[0]['outside']}"


def test_the_demo_shows_nat_the_mss_one_retransmission_and_three_fragments(as_user, tmp_path):
    r = demo(as_user)
    assert r["capture"] == "live"
    assert r["nat"]["private"] == "192.168.1.2:6789"
    assert r["nat"]["seen_by_server"].startswith("203.0.113.1:")
    assert r["nat"]["seen_by_server"] == r["nat"]["conntrack_reply_to"]  # the router's conntrack entry
    assert r["mss"] == 1460 and r["handshake"] == ["SYN", "SYN+ACK", "ACK"]
    assert r["retransmissions"] == 1 == r["kernel_retransmissions"] and r["lost_by_the_link"] == 1
    assert r["fragments"] == 3


def test_a_smaller_mtu_gives_a_smaller_mss_and_a_jumbo_mtu_one_packet(as_user):
    small, jumbo = demo(as_user, "--mtu", "1400"), demo(as_user, "--mtu", "9000")
    assert small["capture"] == jumbo["capture"] == "live"
    assert small["mss"] == 1360 and small["fragments"] == 3 and small["retransmissions"] == 1
    assert jumbo["mss"] == 8960 and jumbo["fragments"] == 1 and jumbo["retransmissions"] == 1


def test_no_loss_no_retransmission_and_without_nat_the_server_sees_the_private_address(as_user):
    plain = demo(as_user, "--no-loss", "--no-nat")
    assert plain["capture"] == "live"
    assert plain["retransmissions"] == 0 == plain["kernel_retransmissions"] and plain["lost_by_the_link"] == 0
    assert plain["nat"]["seen_by_server"] == "192.168.1.2:6789"


def test_the_capture_is_a_pcap_that_tcpdump_reads(as_user):
    pcap = as_user.home / "demo.pcap"
    r = demo(as_user, "--pcap", str(pcap))
    frames = read_pcap(pcap)
    segments = tcp_segments(frames)
    assert segments[0].mss == r["mss"] == 1460 and retransmissions(segments) == 1
    assert len(frames) == r["frames_captured"]
    tcpdump = shutil.which("tcpdump") or shutil.which("tcpdump", path="/usr/sbin:/sbin")
    if tcpdump is None:
        if IN_CI:
            pytest.fail("tcpdump is not installed (make system-packages installs it)")
        pytest.skip("tcpdump is not installed")
    shown = subprocess.run([tcpdump, "-nn", "-v", "-r", str(pcap)], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    syn = [line for line in shown.stdout.splitlines() if "Flags [S]," in line]
    assert len(syn) == 1 and "192.168.1.2." in syn[0] and "mss 1460" in syn[0]  # home's side of the NAT: private
    assert "incorrect" not in shown.stdout  # checksums computed in software: tcpdump agrees with every one
    assert shown.stdout.count("proto UDP (17)") >= 4  # the NAT datagram and the three fragments


NOTHING_LEFT = """
    import fcntl, socket, gc
    from course.netlab import Lab, home_network, socket_netns
    from course.errors import SetupError

    def lab_fds(inodes):
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target in {f"net:[{i}]" for i in inodes} or target.startswith("user:["):
                found.append(target)
            elif target.startswith("socket:["):
                try:
                    s = socket.socket(fileno=os.dup(int(fd)))
                except OSError:
                    continue
                with s:
                    if socket_netns(s) in inodes:
                        found.append(f"fd {fd}: a socket in the lab")
        return found

    def use(net):
        home, server = net.host("home"), net.host("server")
        srv = server.socket(socket.AF_INET, socket.SOCK_DGRAM)
        srv.bind(("198.51.100.10", 0))
        srv.settimeout(5)
        with home.capture() as cap:
            home.run(lambda a: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", a), srv.getsockname())
            srv.recvfrom(10)
        listener = server.socket()
        listener.bind(("198.51.100.10", 0))
        listener.listen()
        return [srv, listener], {h.inode for h in net.hosts.values()}

    def interrupted(net):
        # a cell interrupted (Ctrl-C, Jupyter's stop button) while a run() child works: SIGINT
        import signal, threading
        from course.deadline import wait_for
        def interrupt():
            wait_for(lambda: net._children, 10, "the run() child never started")
            os.kill(os.getpid(), signal.SIGINT)
        t = threading.Thread(target=interrupt)
        t.start()
        try:
            net.host("home").run(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).recv(1), timeout=60)
        finally:
            t.join(10)

    fds_before = sorted(os.listdir("/proc/self/fd"))
    rows = []
    for how in ("normal", "exception", "setup fails", "interrupted", "again"):
        net = home_network() if how != "setup fails" else Lab(lambda n: (n.add_host("a"), n.add_host("b"), 1 / 0))
        inodes, sockets = set(), []
        try:
            with net:
                if how == "setup fails":
                    raise AssertionError("the setup should have failed")
                sockets, inodes = use(net)
                if how == "exception":
                    raise KeyError("inside the block")
                if how == "interrupted":
                    interrupted(net)
                    raise AssertionError("the run() should have been interrupted")
        except (KeyError, ZeroDivisionError, KeyboardInterrupt):
            pass
        inodes |= {h.inode for h in net.hosts.values()}
        gc.collect()
        rows.append({"how": how, "agent": net.agent_pid, "inodes": sorted(inodes), "left": lab_fds(inodes),
                     "closed": all(s.fileno() == -1 for s in sockets), "children": children()})
    report({"rows": rows, "fds_same": sorted(os.listdir("/proc/self/fd")) == fds_before})
"""


def test_nothing_is_left_after_a_normal_exit_an_exception_a_failed_setup_or_an_interrupted_cell(as_user):
    _, results = as_user.run(NOTHING_LEFT)
    report = results[0]
    assert [row["how"] for row in report["rows"]] == ["normal", "exception", "setup fails", "interrupted", "again"]
    for row in report["rows"]:
        assert len(row["inodes"]) == (2 if row["how"] == "setup fails" else 3)
        assert row["left"] == [], f"{row['how']}: the owner still holds {row['left']}"
        assert row["closed"] and row["children"] == [], row
        if os.geteuid() == 0:
            assert holders(set(row["inodes"]), as_user.uid) == []
    assert report["fds_same"], "running labs one after another left descriptors open"


def test_a_killed_owner_takes_its_lab_with_it(as_user):
    proc = as_user.popen(text=False, code="""
        from course.netlab import home_network
        net = home_network().__enter__()
        report({"agent": net.agent_pid, "inodes": [h.inode for h in net.hosts.values()]})
        sys.stdin.read()  # until the test kills this process
    """, stdin=subprocess.PIPE)
    try:
        report = read_result(proc, 60)
        inodes = set(report["inodes"])
        if os.geteuid() == 0:
            assert holders(inodes, as_user.uid), "the lab should be alive while its owner is"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        wait_for(lambda: not Path(f"/proc/{report['agent']}").exists() or _zombie_or_other(report["agent"]), 15,
                 f"the agent {report['agent']} outlived its killed owner")
        if os.geteuid() == 0:
            wait_for(lambda: not holders(inodes, as_user.uid), 15, lambda: f"something still holds the lab: {holders(inodes, as_user.uid)}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
        proc.stdin.close()


def read_result(proc: subprocess.Popen, timeout: float) -> dict:
    """The first RESULT a running snippet prints, read from its pipe with a deadline."""
    from course.deadline import Deadline

    deadline, buffer = Deadline(timeout), b""
    while b"\nRESULT " not in buffer or not buffer.split(b"\nRESULT ", 1)[1].count(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], deadline.remaining())
        chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
        if not chunk:
            pytest.fail(f"the lab's owner reported nothing within {timeout} s (exit status {proc.poll()}): {buffer[-2000:]!r}")
        buffer += chunk
    return json.loads(buffer.split(b"\nRESULT ", 1)[1].split(b"\n", 1)[0])


def _zombie_or_other(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] == "Z" or "agent.py" not in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return True


TWO_LABS = """
    import socket
    from course.netlab import home_network
    from course.netlab.demo import PRIVATE_PORT  # 6789: a fixed port is safe inside a lab host
    with home_network() as a, home_network() as b:
        got = {}
        servers = {}
        for name, net in (("a", a), ("b", b)):
            srv = net.host("server").socket(socket.AF_INET, socket.SOCK_DGRAM)
            srv.bind(("198.51.100.10", servers["a"].getsockname()[1] if servers else 0))  # the same port in both
            srv.settimeout(5)
            servers[name] = srv
        for name, net in (("a", a), ("b", b)):
            cli = net.host("home").socket(socket.AF_INET, socket.SOCK_DGRAM)
            cli.bind(("192.168.1.2", PRIVATE_PORT))
            cli.sendto(name.encode(), servers[name].getsockname())
        for name, srv in servers.items():
            data, seen = srv.recvfrom(100)
            srv.setblocking(False)
            try:
                more = srv.recv(100)
            except BlockingIOError:
                more = None
            got[name] = [data.decode(), list(seen), more]
        report({"got": got, "inodes": [[h.inode for h in a.hosts.values()], [h.inode for h in b.hosts.values()]]})
"""


def test_two_labs_at_once_do_not_interfere(as_user):
    _, results = as_user.run(TWO_LABS)
    r = results[0]
    assert r["got"] == {"a": ["a", ["203.0.113.1", 6789], None], "b": ["b", ["203.0.113.1", 6789], None]}
    assert not set(r["inodes"][0]) & set(r["inodes"][1])
    # and two processes at once, each with its own lab, as two test runs would
    two = as_user.run_together("""
        status, out = main_of("demo", "--json")
        report(json.loads(out))
    """, timeout=90)
    for (result,) in two:
        assert (result["capture"], result["retransmissions"], result["fragments"], result["mss"]) == ("live", 1, 3, 1460)


BROKEN = """
    # This process is root of a user and network namespace the test made with `unshare`: here that
    # namespace plays the machine's own network, with a default route out of out0, one end of a
    # veth pair whose other end, out1, drops what comes (no address, no forwarding); the gateway's
    # address is resolved for good, so whatever is sent leaves at once and a packet socket sees it.
    import ctypes, socket, subprocess, struct
    from course.errors import SetupError
    from course.netlab import lab as labmod
    from course.netlab.demo import home_network
    for cmd in (["link", "set", "lo", "up"], ["link", "add", "out0", "type", "veth", "peer", "name", "out1"],
                ["address", "add", "10.99.0.1/24", "dev", "out0"], ["link", "set", "out0", "up"], ["link", "set", "out1", "up"],
                ["neigh", "add", "10.99.0.2", "lladdr", "02:00:00:00:00:02", "dev", "out0", "nud", "permanent"],
                ["route", "add", "default", "via", "10.99.0.2", "dev", "out0"]):
        subprocess.run(["/usr/sbin/ip"] + cmd, check=True)
    wire = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    wire.bind(("out0", 3))
    wire.setblocking(False)

    def seen():
        frames = []
        while True:
            try:
                frame = wire.recv(65600)
            except BlockingIOError:
                return frames
            if frame[12:14] == b"\\x08\\x00" and frame[14 + 9] in (6, 17):
                frames.append(socket.inet_ntoa(frame[14 + 16:14 + 20]))

    # the control: a plain socket here does reach the "machine's network" (so the test can fail)
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"control", ("198.51.100.10", 9))
    control = seen()
    refused = []
    with home_network() as net:
        home = net.host("home")
        # 1. a plain socket.socket() posing as a lab socket
        plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        fake = labmod.LabSocket(home, socket.AF_INET, socket.SOCK_DGRAM, 0, fileno=plain.detach())
        for call in (lambda: fake.sendto(b"x", ("198.51.100.10", 9)), lambda: fake.connect(("198.51.100.10", 9))):
            try:
                call()
            except SetupError as exc:
                refused.append(str(exc))
        tcp_fake = labmod.LabSocket(home, socket.AF_INET, socket.SOCK_STREAM, 0, fileno=socket.socket().detach())
        tcp_fake.settimeout(1)
        try:
            tcp_fake.connect(("198.51.100.10", 80))
        except SetupError as exc:
            refused.append(str(exc))
        # 2. a broken lab: the agent hands out sockets of the wrong namespace
        real_call = net._call
        def broken_call(op, nfds=0, wait=None, **req):
            if op == "socket":
                return {"ok": True}, [socket.socket(socket.AF_INET, socket.SOCK_DGRAM).detach()]
            return real_call(op, nfds, wait, **req)
        net._call = broken_call
        try:
            home.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("198.51.100.10", 9))
        except SetupError as exc:
            refused.append(str(exc))
        net._call = real_call
        # 3. a run() whose process did not get into the lab: fn (a plain socket) must never run
        real_setns = labmod._libc.setns
        labmod._libc = type("NoSetns", (), {"setns": staticmethod(lambda fd, kind: 0),
                                            "prctl": staticmethod(ctypes.CDLL(None).prctl)})()
        try:
            home.run(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("198.51.100.10", 9)))
        except SetupError as exc:
            refused.append(str(exc))
        # the lab itself still works: a real lab socket reaches the lab's server, not the dummy
        labmod._libc = ctypes.CDLL(None, use_errno=True)
        srv = net.host("server").socket(socket.AF_INET, socket.SOCK_DGRAM)
        srv.bind(("198.51.100.10", 0))
        srv.settimeout(5)
        home.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"inside", srv.getsockname())
        inside = srv.recvfrom(100)[0].decode()
    report({"control": control, "refused": refused, "leaked": seen(), "inside": inside})
"""


def test_a_broken_lab_sends_nothing_out_of_the_host_namespace(as_user):
    unshare = ["unshare", "--user", "--map-root-user", "--net", "--"]
    _, results = as_user.run(BROKEN, wrap=unshare)
    r = results[0]
    assert r["control"] == ["198.51.100.10"], "the control datagram should have been seen leaving out0"
    assert len(r["refused"]) == 5 and all("nothing was sent" in x or "did not run" in x for x in r["refused"]), r["refused"]
    assert r["leaked"] == [] and r["inside"] == "inside"


def test_a_plain_socket_of_the_machine_is_refused_too(as_user):
    """Outside any namespace of ours the check cannot even read the socket's namespace (EPERM):
    refused as well. The address is loopback's, so that a failure of the check would stay on lo."""
    _, results = as_user.run("""
        import socket
        from course.errors import SetupError
        from course.netlab import home_network
        from course.netlab.lab import LabSocket, socket_netns
        catcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        catcher.bind(("127.0.0.1", 0))
        catcher.setblocking(False)
        with home_network() as net:
            fake = LabSocket(net.host("home"), socket.AF_INET, socket.SOCK_DGRAM, 0, fileno=socket.socket(socket.AF_INET, socket.SOCK_DGRAM).detach())
            inode = socket_netns(fake)
            try:
                fake.sendto(b"x", catcher.getsockname())
                refused = None
            except SetupError as exc:
                refused = str(exc)
        try:
            got = catcher.recv(10).decode()
        except BlockingIOError:
            got = None
        report({"inode": inode, "refused": refused, "got": got})
    """)
    r = results[0]
    assert r["refused"] and "nothing was sent" in r["refused"] and r["got"] is None
    assert r["inode"] is None and "may not inspect" in r["refused"]


REFUSED = """
    import time
    from course.errors import SetupError
    from course.netlab import Lab
    started = time.monotonic()
    try:
        Lab().__enter__()
        message = None
    except SetupError as exc:
        message = str(exc)
    elapsed = time.monotonic() - started
    status, out = main_of("demo", "--json")
    report({"message": message, "elapsed": elapsed, "status": status, "demo": json.loads(out)})
"""


def test_where_user_namespaces_are_refused_every_lab_call_says_why_and_the_demo_shows_the_recording(as_user):
    sandboxes = refusing_sandboxes(as_user)
    # a container's read-only /proc/sys: the namespace is made, its sysctls cannot be written
    bwrap = sandboxes["bwrap --disable-userns"][0][0]
    sandboxes["read-only /proc/sys"] = ([bwrap, "--unshare-user", "--unshare-net", "--die-with-parent", "--ro-bind", "/", "/",
                                         "--dev", "/dev", "--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--"],
                                        "/proc/sys is read-only here")
    for name, (wrap, reason) in sandboxes.items():
        _, results = as_user.run(REFUSED, wrap=wrap)
        r = results[0]
        assert r["message"] and r["message"].startswith("no lab network here:") and "\n" not in r["message"], (name, r)
        assert r["elapsed"] < 5, f"{name}: refusing took {r['elapsed']:.1f} s"
        assert reason in r["message"], (name, r["message"])
        d = r["demo"]
        assert r["status"] == 0 and d["capture"] == "recording" and d["why"] == r["message"]
        assert (d["mss"], d["retransmissions"], d["fragments"], d["handshake"]) == (1460, 1, 3, ["SYN", "SYN+ACK", "ACK"])


LINKS = """
    import socket, time
    from course.deadline import wait_for
    from course.netlab import Lab, Loss
    with Lab() as net:
        a, b = net.add_host("a"), net.add_host("b")
        link = net.link(a, b, "192.0.2.1/24", "192.0.2.2/24", mtu=1500, rate="8mbit")
        server = b.socket()
        server.bind(("192.0.2.2", 0))
        server.listen()
        server.settimeout(10)
        size = 400_000
        started = time.monotonic()
        client = a.socket()
        client.settimeout(10)
        client.connect(server.getsockname())
        conn, _ = server.accept()
        conn.settimeout(10)
        client.sendall(bytes(size))
        client.shutdown(socket.SHUT_WR)
        got = 0
        while chunk := conn.recv(65536):
            got += len(chunk)
        limited = time.monotonic() - started
        # every UDP datagram toward b lost, then none
        u_srv = b.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u_srv.bind(("192.0.2.2", 0))
        u_srv.setblocking(False)
        u_cli = a.socket(socket.AF_INET, socket.SOCK_DGRAM)
        link.set_loss(Loss.random(1.0, of="udp"), toward=b)
        for i in range(5):
            u_cli.sendto(b"lost %d" % i, u_srv.getsockname())
        wait_for(lambda: link.dropped(toward=b) == 5, 10, "the link should have dropped 5 datagrams")
        try:
            arrived = u_srv.recv(100).decode()
        except BlockingIOError:
            arrived = None
        link.set_loss(Loss.random(0.0, of="udp"), toward=b)
        u_cli.sendto(b"kept", u_srv.getsockname())
        u_srv.settimeout(5)
        kept = u_srv.recv(100).decode()
        # a firewall rule on a router: b forwards for c, and drops what goes to one port
        c = net.add_host("c")
        net.link(b, c, "198.51.100.1/24", "198.51.100.2/24")
        a.route("198.51.100.0/24", via="192.0.2.2")
        c.route("192.0.2.0/24", via="198.51.100.1")
        b.forwarding(True)
        b.drop("udp dport 9")
        far = c.socket(socket.AF_INET, socket.SOCK_DGRAM)
        far.bind(("198.51.100.2", 9))
        far.setblocking(False)
        u_cli.sendto(b"blocked", ("198.51.100.2", 9))
        wait_for(lambda: "packets 1 " in b.cmd("nft", "list", "chain", "inet", "lab", "forward"), 10, "the router should drop one datagram")
        try:
            blocked = far.recv(100).decode()
        except BlockingIOError:
            blocked = None
    report({"got": got, "limited": limited, "arrived": arrived, "kept": kept, "blocked": blocked,
            "mtu": link.mtu, "interfaces": [a.interfaces, b.interfaces]})
"""


def test_links_have_a_rate_and_a_loss_and_a_router_drops(as_user):
    _, results = as_user.run(LINKS)
    r = results[0]
    assert r["got"] == 400_000
    assert r["limited"] >= 0.8 * 400_000 * 8 / 8_000_000, f"400 kB at 8 Mbit/s took only {r['limited']:.3f} s"
    assert r["arrived"] is None and r["kept"] == "kept" and r["blocked"] is None
    assert r["interfaces"] == [{"eth0": ["192.0.2.1/24"]}, {"eth0": ["192.0.2.2/24"], "eth1": ["198.51.100.1/24"]}]


LAN = """
    import socket
    from course.deadline import wait_for
    from course.errors import SetupError
    from course.netlab import Lab
    with Lab() as net:
        a, b, gw, far = (net.add_host(n) for n in ("a", "b", "gw", "far"))
        net.link(gw, a, None, "192.168.7.2/24", names=("lan0", "eth0"))
        net.link(gw, b, None, "192.168.7.3/24", names=("lan1", "eth0"))
        net.link(gw, far, "192.0.2.1/24", "192.0.2.9/24", names=("wan0", "eth0"))
        gw.bridge("br0", ["lan0", "lan1"], "192.168.7.1/24")
        far.add_address("192.0.2.10/24", "eth0")
        a.route("default", via="192.168.7.1")
        far.route("192.168.7.0/24", via="192.0.2.1")
        gw.forwarding(True)
        gw.filter("udp dport 9", "input")  # counted only
        gw.drop("udp dport 7", "input")
        gw.filter('iifname "wan0" udp dport 9', "forward")
        errors = []
        for bad in (lambda: gw.bridge("br1", ["lan7"]), lambda: far.add_address("10.0.0.1/24", "eth0"),
                    lambda: far.add_address("192.0.2.11/24", "eth9")):
            try:
                bad()
            except SetupError as exc:
                errors.append(str(exc))
        sockets = {}
        for name, host, address in (("a", a, "192.168.7.2"), ("b", b, "192.168.7.3"), ("far", far, "192.0.2.10")):
            sockets[name] = host.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets[name].bind((address, 0))
            sockets[name].settimeout(5)
        before = {"counters": gw.counters("input", "forward"), "snmp": gw.snmp()}
        sockets["a"].sendto(b"over the bridge", sockets["b"].getsockname())  # one LAN: the bridge switches it
        across = sockets["b"].recvfrom(100)
        sockets["far"].sendto(b"from the second address", sockets["a"].getsockname())  # routed by gw
        routed = sockets["a"].recvfrom(100)
        sockets["a"].sendto(b"to nobody", ("192.168.7.1", 9))  # to gw itself: counted, no socket there
        sockets["a"].sendto(b"dropped", ("192.168.7.1", 7))
        sockets["far"].sendto(b"through", ("192.168.7.3", 9))
        wait_for(lambda: gw.counters("input", "forward") == {"input": 2, "forward": 1}, 10,
                 lambda: f"gw counted {gw.counters('input', 'forward')}")
        wait_for(lambda: gw.snmp()["Udp"]["NoPorts"] == before["snmp"]["Udp"]["NoPorts"] + 1, 10,
                 lambda: f"gw's Udp NoPorts is {gw.snmp()['Udp']}")
        report({"across": [across[0].decode(), list(across[1])], "routed": [routed[0].decode(), list(routed[1])],
                "before": before["counters"], "after": gw.counters("input", "forward", "output"),
                "ip_forward": gw.read_sysctl("net.ipv4.ip_forward"), "ipfrag_time": a.read_sysctl("net.ipv4.ipfrag_time"),
                "interfaces": [gw.interfaces, far.interfaces], "errors": errors, "snmp_groups": sorted(before["snmp"])})
"""


def test_a_bridge_makes_one_lan_and_filter_rules_count_what_they_match(as_user):
    _, results = as_user.run(LAN)
    r = results[0]
    assert r["across"] == ["over the bridge", ["192.168.7.2", r["across"][1][1]]]
    assert r["routed"][0] == "from the second address" and r["routed"][1][0] == "192.0.2.10"
    assert r["before"] == {"input": 0, "forward": 0} and r["after"] == {"input": 2, "forward": 1, "output": 0}
    assert r["ip_forward"] == "1" and r["ipfrag_time"] == "30"
    assert r["interfaces"] == [{"lan0": [], "lan1": [], "wan0": ["192.0.2.1/24"], "br0": ["192.168.7.1/24"]},
                               {"eth0": ["192.0.2.9/24", "192.0.2.10/24"]}]
    assert [e.split(":")[0] for e in r["errors"]] == ["lab host 'gw' cannot make bridge 'br1' of ['lan7']",
                                                      "10.0.0.1/24 is not a lab address", "lab host 'far' has no interface 'eth9' (it has eth0)"]
    assert {"Ip", "Icmp", "Tcp", "Udp"} <= set(r["snmp_groups"])


RUN = """
    import socket
    from course.errors import SetupError, YourCodeError
    from course.netlab import home_network

    def learner_client(address):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a plain socket: inside home, since run() put it there
        s.settimeout(5)
        s.sendto(b"ping", address)
        print("sent from", s.getsockname()[0])
        return s.recvfrom(100)[0].decode()

    def hangs():
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).recv(10)

    def fails():
        raise YourCodeError("the learner's own error")

    with home_network() as net:
        srv = net.host("server").socket(socket.AF_INET, socket.SOCK_DGRAM)
        srv.bind(("198.51.100.10", 0))
        srv.settimeout(5)
        import threading
        def echo():
            data, peer = srv.recvfrom(100)
            srv.sendto(data.upper(), peer)
            return peer
        seen = []
        t = threading.Thread(target=lambda: seen.append(echo()))
        t.start()
        answer = net.host("home").run(learner_client, srv.getsockname())
        t.join(10)
        def uses_the_lab():
            return net.host("server").socket()
        errors = []
        for fn in (hangs, fails, uses_the_lab):
            try:
                net.host("home").run(fn, timeout=1.0)
            except (YourCodeError, SetupError) as exc:
                errors.append(str(exc))
        still = net.host("home").run(lambda: "the lab still answers")
    report({"answer": answer, "seen": seen[0], "errors": errors, "still": still})
"""


def test_a_learner_function_runs_inside_a_lab_host(as_user):
    identity, results = as_user.run(RUN)
    r = results[0]
    assert r["answer"] == "PING" and r["seen"][0] == "203.0.113.1"
    assert "hangs() did not return within 1.0 s in lab host 'home'" in r["errors"][0]
    assert r["errors"][1] == "the learner's own error"
    assert r["errors"][2].startswith("inside net.host('home').run(fn), fn is already in 'home'")
    assert r["still"] == "the lab still answers"


IPV6 = """
    import errno, socket
    from course.errors import SetupError
    from course.netlab import Lab
    from course.netlab.lab import LabSocket
    from course.netlab.pcap import neighbour_messages, tcp_packets

    def resolve(name):
        with open("/etc/hosts") as f:
            hosts = f.read()
        return [sa[0] for *_, sa in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)], hosts

    with Lab() as net:
        a, b, old = net.add_host("a", ipv6=True), net.add_host("b", ipv6=True), net.add_host("old")
        net.link(a, b, "192.0.2.1/24", "192.0.2.2/24")
        a.add_address("2001:db8:1::1/64", "eth0")
        b.add_address("2001:db8:1::2/64", "eth0")
        net.link(old, b, "198.51.100.1/24", "198.51.100.2/24")
        listener = b.socket(socket.AF_INET6)
        listener.bind((b.address6, 0))
        listener.listen()
        listener.settimeout(5)
        with a.capture("eth0") as cap:
            client = a.socket(socket.AF_INET6)
            client.settimeout(5)
            client.connect(listener.getsockname()[:2])
            conn, peer = listener.accept()
            conn.settimeout(5)
            client.sendall(b"over IPv6")
            got = conn.recv(100).decode()
            client.close()
            conn.close()
        packets = [[p.version, p.flags, p.src[0], p.dst[0]] for p in tcp_packets(cap.frames)]
        neighbours = [[m.kind, m.about] for m in neighbour_messages(cap.frames)]
        errors = []
        for bad in (lambda: old.add_address("2001:db8:2::1/64", "eth0"), lambda: old.address6):
            try:
                bad()
            except SetupError as exc:
                errors.append(str(exc))
        plain = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        fake = LabSocket(a, socket.AF_INET6, socket.SOCK_STREAM, 0, fileno=plain.detach())
        try:
            fake.connect(("::1", 9))
            refused = None
        except SetupError as exc:
            refused = str(exc)
        fake.close()
        old_v6 = old.socket(socket.AF_INET6)
        try:
            old_v6.bind(("::1", 0))
            bound = None
        except OSError as exc:
            bound = errno.errorcode[exc.errno]
        named = a.run(resolve, "www.lab.test", etc={"hosts": "2001:db8:1::2 www.lab.test\\n192.0.2.2 www.lab.test\\n",
                                                     "nsswitch.conf": "hosts: files\\n"})
        with open("/etc/hosts") as f:
            machine_hosts = f.read()
        report({"got": got, "peer": peer[0], "packets": packets, "neighbours": neighbours, "errors": errors,
                "refused": refused, "bound": bound, "addresses": [a.address, a.address6, b.address],
                "sysctls": {h.name: [h.read_sysctl("net.ipv6.conf.all.disable_ipv6"), h.read_sysctl("net.ipv6.conf.eth0.accept_dad")
                                     if h.ipv6 else None] for h in (a, old)},
                "old_addresses": old.cmd("ip", "-6", "address", "show"), "named": named, "machine_hosts": machine_hosts})
"""


def test_a_host_made_with_ipv6_connects_over_ipv6_on_a_link_and_one_without_has_none(as_user):
    _, results = as_user.run(IPV6)
    r = results[0]
    assert r["got"] == "over IPv6" and r["peer"] == "2001:db8:1::1"
    assert r["addresses"] == ["192.0.2.1", "2001:db8:1::1", "192.0.2.2"]
    # the capture: IPv6's neighbour discovery for b's address (no DAD, no router solicitation), then the
    # handshake, the data and the teardown, all over IPv6
    assert r["neighbours"][:2] == [["neighbour solicitation", "2001:db8:1::2"], ["neighbour advertisement", "2001:db8:1::2"]]
    assert [p[1] for p in r["packets"][:3]] == ["SYN", "SYN,ACK", "ACK"]
    assert {p[0] for p in r["packets"]} == {6} and {p[2] for p in r["packets"]} == {"2001:db8:1::1", "2001:db8:1::2"}
    # the host made without ipv6=True: IPv6 off everywhere, not even ::1
    assert r["sysctls"] == {"a": ["0", "0"], "old": ["1", None]}
    assert r["old_addresses"].strip() == "" and r["bound"] == "EADDRNOTAVAIL"
    assert r["errors"][0].startswith("lab host 'old' has IPv6 off, so it cannot take 2001:db8:2::1/64")
    assert r["errors"][1].startswith("lab host 'old' has no IPv6 address: it was made without IPv6")
    assert r["refused"] and "nothing was sent to ('::1', 9)" in r["refused"]
    # a run() with its own /etc/hosts: the real getaddrinfo answers from it, IPv6 first (RFC 6724: the
    # host has an IPv6 source address); the machine's own /etc/hosts is untouched
    addresses, hosts = r["named"]
    assert addresses == ["2001:db8:1::2", "192.0.2.2"] and hosts.startswith("2001:db8:1::2 www.lab.test")
    assert "www.lab.test" not in r["machine_hosts"]
