"""course.nat: the table without sockets (h11 style), then the relay with real datagrams on
loopback, then the checks the notebook's graded cells call, against right and wrong tables."""
import subprocess
import sys
import threading

import pytest

from course import nat
from course.checks import nat as nat_check
from course.checks import no_leaked_sockets, recorded
from course.deadline import wait_for
from course.errors import YourCodeError
from course.cli import peer_class

IP = "116.226.52.212"
LAPTOP, PHONE = ("192.168.1.2", 6789), ("192.168.1.3", 5353)
WEB, DNS, STRANGER = ("203.0.113.5", 80), ("198.51.100.7", 53), ("192.0.2.66", 4444)


# ---------------------------------------------------------------------------------------------
# NatTable: pure logic
# ---------------------------------------------------------------------------------------------
def test_seed_001_example():
    t = nat.NatTable(IP, [6539, 6540])
    assert t.outbound("tcp", LAPTOP, WEB) == (IP, 6539)
    assert t.inbound("tcp", 6539, WEB) == LAPTOP
    assert t.inbound("tcp", 6540, WEB) is None


def test_same_flow_same_port_for_every_remote_and_new_flows_take_the_next_port():
    t = nat.NatTable(IP, [6539, 6540, 6541])
    assert t.outbound("udp", LAPTOP, WEB) == (IP, 6539)
    assert t.outbound("udp", PHONE, WEB) == (IP, 6540)
    assert t.outbound("udp", LAPTOP, DNS) == (IP, 6539)
    assert t.outbound("udp", (LAPTOP[0], 1), WEB) == (IP, 6541)


def test_inbound_only_from_remotes_the_flow_contacted():
    t = nat.NatTable(IP, [6539, 6540])
    t.outbound("udp", LAPTOP, WEB)
    assert t.inbound("udp", 6539, DNS) is None
    t.outbound("udp", LAPTOP, DNS)
    assert t.inbound("udp", 6539, DNS) == LAPTOP
    assert t.inbound("udp", 6539, STRANGER) is None
    assert t.inbound("udp", 12345, WEB) is None


def test_protocols_have_their_own_ports():
    t = nat.NatTable(IP, [6539])
    assert t.outbound("udp", LAPTOP, WEB) == (IP, 6539)
    assert t.inbound("tcp", 6539, WEB) is None
    assert t.outbound("tcp", PHONE, WEB) == (IP, 6539)
    assert t.inbound("tcp", 6539, WEB) == PHONE and t.inbound("udp", 6539, WEB) == LAPTOP


def test_a_full_table_raises_a_runtime_error_naming_the_flow_and_keeps_old_flows():
    t = nat.NatTable(IP, [6539])
    t.outbound("udp", LAPTOP, WEB)
    with pytest.raises(nat.NatTableFull, match=r"no free public udp port for 192.168.1.3:5353: all 1 ports \[6539\] are mapped"):
        t.outbound("udp", PHONE, WEB)
    assert issubclass(nat.NatTableFull, RuntimeError)
    assert t.outbound("udp", LAPTOP, DNS) == (IP, 6539)


def test_lists_are_accepted_as_addresses_and_rows_are_plain_data():
    t = nat.NatTable(IP, [6539])
    t.outbound("udp", list(LAPTOP), list(WEB))
    assert t.inbound("udp", 6539, list(WEB)) == LAPTOP
    assert t.rows() == [{"protocol": "udp", "private": "192.168.1.2:6789", "public": f"{IP}:6539", "remotes": ["203.0.113.5:80"]}]


def test_table_html_escapes_and_shows_every_row():
    html = nat.table_html([{"protocol": "udp", "private": "<a>", "public": "x", "remotes": ["r1", "r2"]}], "t", dropped=2)
    assert "&lt;a&gt;" in html and "r1, r2" in html and "dropped: 2" in html
    assert "empty" in nat.table_html([])


# ---------------------------------------------------------------------------------------------
# NatRelay: real datagrams on loopback
# ---------------------------------------------------------------------------------------------
def test_the_server_sees_only_the_relay_and_replies_reach_the_right_host():
    with no_leaked_sockets("the relay test"):
        with nat.WhoAmIServer() as server, nat.NatRelay(server.address, pool=2) as relay, \
                nat.Host("127.0.0.2") as a, nat.Host("127.0.0.3") as b:
            a.send(b"from a", relay.gateway)
            b.send(b"from b", relay.gateway)
            got_a, got_b = a.recv(), b.recv()
            assert got_a[0] == f"from a | you are {relay.public_address(0)}".encode()
            assert got_b[0] == f"from b | you are {relay.public_address(1)}".encode()
            assert got_a[1] == relay.gateway  # the reply comes from the router's LAN side
            assert server.sources() == [relay.public_address(0), relay.public_address(1)]
            assert [r["private"] for r in relay.mappings()] == [f"127.0.0.2:{a.address[1]}", f"127.0.0.3:{b.address[1]}"]
            assert relay.mappings()[0]["out"] == 1 and relay.mappings()[0]["in"] == 1


def test_unsolicited_datagrams_are_dropped_and_counted():
    with nat.WhoAmIServer() as server, nat.NatRelay(server.address, pool=2) as relay, \
            nat.Host("127.0.0.2") as a, nat.Host("127.0.0.4") as stranger:
        a.send(b"hi", relay.gateway)
        assert a.recv() is not None
        for port in relay.public_ports:
            stranger.send(b"let me in", (relay.public_host, port))
        wait_for(lambda: len(relay.dropped) == 2, 2.0, f"the relay dropped {relay.dropped}")
        assert {d[3] for d in relay.dropped} == {"no mapping"}
        assert a.pending() == []


def test_one_flow_keeps_its_public_port_towards_two_servers():
    with nat.WhoAmIServer() as s1, nat.WhoAmIServer() as s2, nat.NatRelay([s1.address, s2.address]) as relay, \
            nat.Host("127.0.0.2") as a:
        a.send(b"1", relay.gateways[s1.address])
        a.send(b"2", relay.gateways[s2.address])
        assert a.recv() is not None and a.recv() is not None
        assert s1.sources() == s2.sources() == [relay.public_address(0)]
        # s2 was contacted, so s2 may answer on that port; s1's socket sending again is also let in.
        s2.sendto(b"push", (relay.public_host, relay.public_ports[0]))
        data, via = a.recv()
        assert data == b"push" and via == relay.gateways[s2.address]


def test_a_full_pool_drops_new_flows_with_the_reason():
    with nat.WhoAmIServer() as server, nat.NatRelay(server.address, pool=1) as relay, \
            nat.Host("127.0.0.2") as a, nat.Host("127.0.0.3") as b:
        a.send(b"a", relay.gateway)
        assert a.recv() is not None
        b.send(b"b", relay.gateway)
        wait_for(lambda: relay.dropped, 2.0, "no drop")
        assert "NatTableFull" in relay.dropped[0][3]
        assert b.recv(0.2) is None


def test_a_table_that_fails_in_init_fails_the_with_statement_and_leaks_nothing():
    class Blank:
        def __init__(self, public_ip, public_ports):
            raise NotImplementedError()

    with no_leaked_sockets("a relay whose table fails"):
        with nat.WhoAmIServer() as server:
            with pytest.raises(NotImplementedError):
                with nat.NatRelay(server.address, table_class=Blank):
                    pass


def test_a_table_returning_a_foreign_port_or_hanging_is_dropped_with_the_reason():
    release = threading.Event()

    class Foreign(nat.NatTable):
        def outbound(self, protocol, private, remote):
            if private[0] == "127.0.0.3":
                release.wait(3 * nat.NatRelay.call_timeout)
            return (self.public_ip, 1)

    try:
        with nat.WhoAmIServer() as server, nat.NatRelay(server.address, table_class=Foreign) as relay, \
                nat.Host("127.0.0.2") as a, nat.Host("127.0.0.3") as b:
            a.send(b"x", relay.gateway)
            wait_for(lambda: relay.dropped, 2.0, "no drop")
            assert "outbound() returned ('127.0.0.1', 1), not one of the relay's public addresses" == relay.dropped[0][3]
            b.send(b"y", relay.gateway)
            wait_for(lambda: len(relay.dropped) == 2, 2 * nat.NatRelay.call_timeout + 5.0, "no second drop")
            assert f"did not return within {nat.NatRelay.call_timeout} s" in relay.dropped[1][3]
            assert server.sources() == []
    finally:
        release.set()


def test_whoami_is_a_cli_peer():
    assert peer_class("udp-whoami") is nat.WhoAmIServer


# ---------------------------------------------------------------------------------------------
# The checks, against right and wrong tables
# ---------------------------------------------------------------------------------------------
class NewPortPerPacket(nat.NatTable):
    def outbound(self, protocol, private, remote):
        got = super().outbound(protocol, (private[0], len(self._public_of) + 10000), remote)
        self._private_of[(protocol, got[1])] = tuple(private)
        return got


class NoFilter(nat.NatTable):
    def inbound(self, protocol, public_port, remote):
        return self._private_of.get((protocol, public_port))


class ForwardsUnknown(nat.NatTable):
    def inbound(self, protocol, public_port, remote):
        found = super().inbound(protocol, public_port, remote)
        return found or next(iter(self._private_of.values()), None)


def test_the_checks_pass_the_reference_table():
    nat_check.check_nat_table_basics(nat.NatTable)
    nat_check.check_nat_table_rules(nat.NatTable)
    for seed in (1, 2, 3):
        nat_check.check_nat_table_model(nat.NatTable, seed=seed)
    nat_check.check_table_in_relay(nat.NatTable)


def test_a_new_port_per_packet_is_caught_by_the_visible_check():
    with pytest.raises(YourCodeError, match=r"the second time returned \('116.226.52.212', 6540\); expected \('116.226.52.212', 6539\): the same flow must keep its mapping"):
        nat_check.check_nat_table_basics(NewPortPerPacket)


def test_no_filtering_is_caught_in_the_table_and_over_real_datagrams():
    with pytest.raises(YourCodeError, match=r"inbound\('udp', 6540, \('203.0.113.5', 80\)\) returned \('192.168.1.3', 5353\); expected None: the phone never sent to WEB"):
        nat_check.check_nat_table_rules(NoFilter)
    with pytest.raises(YourCodeError, match=r"unsolicited datagrams from 127.0.0.4 reached \['127.0.0.2:\d+', '127.0.0.3:\d+'\]"):
        nat_check.check_table_in_relay(NoFilter)


def test_forwarding_unknown_inbound_is_caught():
    with pytest.raises(YourCodeError, match=r"inbound\('udp', 6540, .*\) returned \('192.168.1.2', 6789\); expected None"):
        nat_check.check_nat_table_basics(ForwardsUnknown)
    with pytest.raises(YourCodeError, match="unsolicited datagrams from 127.0.0.4 reached"):
        nat_check.check_table_in_relay(ForwardsUnknown)


def test_a_table_that_sends_replies_to_the_last_sender_is_caught():
    class LastSender(nat.NatTable):
        def outbound(self, protocol, private, remote):
            self.last = tuple(private)
            return super().outbound(protocol, private, remote)

        def inbound(self, protocol, public_port, remote):
            return self.last if super().inbound(protocol, public_port, remote) else None

    nat_check.check_nat_table_basics(LastSender)  # one host at a time cannot tell...
    with pytest.raises(YourCodeError, match=r"inbound\('udp', 6540, \('198.51.100.7', 53\)\) returned \('192.168.1.2', 6789\); expected \('192.168.1.3', 5353\)"):
        nat_check.check_nat_table_rules(LastSender)  # ...two hosts can


def test_a_table_that_never_fills_is_caught():
    class Wraps(nat.NatTable):
        def outbound(self, protocol, private, remote):
            try:
                return super().outbound(protocol, private, remote)
            except nat.NatTableFull:
                return (self.public_ip, self.public_ports[0])

    with pytest.raises(YourCodeError, match=r"a 4th flow on a table of 3 public ports got \('116.226.52.212', 6539\); .* must raise RuntimeError"):
        nat_check.check_nat_table_rules(Wraps)


def test_a_model_mismatch_names_the_operation():
    class LastPortFirst(nat.NatTable):
        def __init__(self, public_ip, public_ports):
            super().__init__(public_ip, list(reversed(list(public_ports))))

    with pytest.raises(YourCodeError, match=r"outbound\('udp', .*\(operation \d+ of a seeded sequence\) returned"):
        nat_check.check_nat_table_model(LastPortFirst)


def test_relay_evidence_is_plain_and_the_same_every_run():
    nat_check.check_table_in_relay(nat.NatTable)
    first = recorded[-1]
    nat_check.check_table_in_relay(nat.NatTable)
    assert recorded[-1] == first
    assert first["server_sources"] == ["port A", "port B", "port A"]
    assert first["unsolicited_dropped"] == 3


def test_a_table_remembering_only_the_last_remote_is_caught():
    class LastRemoteOnly(nat.NatTable):
        def outbound(self, protocol, private, remote):
            public = super().outbound(protocol, private, remote)
            self._remotes[(protocol, public[1])][:] = [tuple(remote)]
            return public

    nat_check.check_nat_table_basics(LastRemoteOnly)
    with pytest.raises(YourCodeError, match=r"after the laptop sent to WEB and then DNS returned None; expected \('192.168.1.2', 6789\): remember every remote"):
        nat_check.check_nat_table_rules(LastRemoteOnly)


def test_a_table_filtering_by_remote_ip_only_is_caught():
    class IpOnly(nat.NatTable):
        def inbound(self, protocol, public_port, remote):
            private = self._private_of.get((protocol, public_port))
            if private is None or remote[0] not in {r[0] for r in self._remotes[(protocol, public_port)]}:
                return None
            return private

    nat_check.check_nat_table_basics(IpOnly)
    with pytest.raises(YourCodeError, match=r"inbound\('udp', 6539, \('203.0.113.5', 8080\)\) returned \('192.168.1.2', 6789\); expected None: .* ip and port"):
        nat_check.check_nat_table_rules(IpOnly)


def test_relay_evidence_does_not_depend_on_which_free_port_a_flow_takes():
    """Taking the last free port breaks the first-port rule, which the table checks test; over real
    traffic it carries every datagram right, and its evidence is the reference's."""
    class LastFreePort(nat.NatTable):
        def __init__(self, public_ip, public_ports):
            super().__init__(public_ip, list(reversed(list(public_ports))))

    nat_check.check_table_in_relay(nat.NatTable)
    reference = recorded[-1]
    nat_check.check_table_in_relay(LastFreePort)
    assert recorded[-1] == reference


# ---------------------------------------------------------------------------------------------
# Where the checks live
# ---------------------------------------------------------------------------------------------
def test_check_names_of_earlier_releases_reach_the_checks_module():
    """Notebooks of earlier releases call nat.check_nat_table_basics(...): it is course.checks.nat's own."""
    for name in nat_check.__all__:
        if name.startswith("check_"):
            assert getattr(nat, name) is getattr(nat_check, name)
    with pytest.raises(AttributeError, match="module 'course.nat' has no attribute 'LAPTOP'"):
        nat.LAPTOP  # only check_* names are forwarded


def test_the_lesson_does_not_import_its_checks():
    code = "import sys, course.nat; print('course.checks.nat' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
