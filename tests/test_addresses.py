"""course.addresses: the reference conversions agree with ipaddress, the port ranges are IANA's,
the kernel's ephemeral range is what /proc says and what port-0 binds get, and the checks catch the
classic bugs with a one-sentence hint."""
import ipaddress
import socket
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course import addresses as A
from course.checks import addresses as C
from course.errors import YourCodeError


def ipaddress_int(text):
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return "ValueError"


def ours(fn, *args):
    try:
        return fn(*args)
    except ValueError:
        return "ValueError"


# ---------------------------------------------------------------------------------------------
# IPv4 and IPv6
# ---------------------------------------------------------------------------------------------
def test_seed_examples_both_ways():
    assert A.ip_to_int("192.168.1.2") == 3232235778
    assert A.int_to_ip(3232235778) == "192.168.1.2"
    assert A.ip_to_int("127.0.0.1") == 0x7F000001
    assert A.int_to_ip(0) == "0.0.0.0" and A.int_to_ip(2**32 - 1) == "255.255.255.255"


@settings(max_examples=500)
@given(st.integers(0, 2**32 - 1))
def test_int_to_ip_agrees_with_ipaddress_and_round_trips(n):
    assert A.int_to_ip(n) == str(ipaddress.IPv4Address(n))
    assert A.ip_to_int(A.int_to_ip(n)) == n


@settings(max_examples=1000)
@given(st.one_of(st.text(max_size=20), st.text(alphabet="0123456789.", max_size=16), C._ipv4_strategies()[1]))
def test_ip_to_int_accepts_and_refuses_exactly_what_ipaddress_does(text):
    assert ours(A.ip_to_int, text) == ipaddress_int(text)


@pytest.mark.parametrize("text", ["256.1.1.1", "1.2.3", "127.1", "01.2.3.4", " 1.2.3.4", "1.2.3.4\n", "\u0661.1.1.1", ""])
def test_malformed_addresses_raise_value_error(text):
    with pytest.raises(ValueError):
        A.ip_to_int(text)


@pytest.mark.parametrize("value", [None, 3232235778, b"127.0.0.1", 1.5])
def test_a_value_that_is_not_a_str_raises_value_error(value):
    with pytest.raises(ValueError, match="is a str"):
        A.ip_to_int(value)


@pytest.mark.parametrize("value", [-1, 2**32, "1", 1.0, None, True, False])
def test_int_to_ip_refuses_what_is_not_a_32_bit_int(value):
    with pytest.raises(ValueError):
        A.int_to_ip(value)


@settings(max_examples=300)
@given(st.integers(0, 2**128 - 1))
def test_ipv6_is_128_bits_and_round_trips(n):
    text = A.int_to_ipv6(n)
    assert text == str(ipaddress.IPv6Address(n))
    assert A.ipv6_to_int(text) == n


def test_ipv6_malformed_and_out_of_range_raise_value_error():
    for bad in ("::g", "1:2:3:4:5:6:7:8:9", "", None):
        with pytest.raises(ValueError):
            A.ipv6_to_int(bad)
    with pytest.raises(ValueError):
        A.int_to_ipv6(2**128)


def test_a_real_ipv6_socket_reports_loopback_as_integer_one():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        assert A.ipv6_to_int(s.getsockname()[0]) == 1


# ---------------------------------------------------------------------------------------------
# Private and loopback
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "address, private, loopback",
    [
        ("10.0.0.0", True, False), ("9.255.255.255", False, False), ("172.16.0.0", True, False),
        ("172.31.255.255", True, False), ("172.32.0.0", False, False), ("192.168.1.2", True, False),
        ("192.169.0.0", False, False), ("127.0.0.1", False, True), ("127.255.255.255", False, True),
        ("128.0.0.0", False, False), ("169.254.1.1", False, False), ("::1", False, True),
        ("fd00::1", True, False), ("fe80::1", False, False), ("116.226.52.212", False, False),
    ],
)
def test_private_and_loopback_ranges(address, private, loopback):
    assert A.is_private(address) is private
    assert A.is_loopback(address) is loopback


@settings(max_examples=500)
@given(st.integers(0, 2**32 - 1))
def test_rfc1918_is_narrower_than_ipaddress_is_private_and_loopback_agrees(n):
    text = A.int_to_ip(n)
    ip = ipaddress.IPv4Address(n)
    if A.is_private(text):
        assert ip.is_private
    assert A.is_loopback(text) == ip.is_loopback


@pytest.mark.parametrize("value", ["localhost", "10.0.0", None, 167772161])
def test_private_and_loopback_refuse_non_addresses(value):
    with pytest.raises(ValueError):
        A.is_private(value)
    with pytest.raises(ValueError):
        A.is_loopback(value)


def test_every_127_address_is_this_host():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        server.bind(("127.0.0.2", 0))
        server.settimeout(2.0)
        client.bind(("127.45.6.7", 0))
        client.sendto(b"hi", server.getsockname())
        data, source = server.recvfrom(10)
    assert data == b"hi" and A.is_loopback(source[0]) and source[0] == "127.45.6.7"


# ---------------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "port, name",
    [(0, "well-known"), (1023, "well-known"), (1024, "registered"), (49151, "registered"), (49152, "dynamic"), (65535, "dynamic")],
)
def test_iana_ranges_at_their_edges(port, name):
    assert A.classify_port(port) == name


@pytest.mark.parametrize("port", [-1, 65536, "80", 80.0, None, True, False])
def test_classify_port_refuses_what_is_not_a_port(port):
    with pytest.raises(ValueError):
        A.classify_port(port)


def test_ephemeral_range_is_the_proc_file_and_port_zero_lands_in_it():
    first, last = A.ephemeral_port_range()
    assert (first, last) == tuple(int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    assert 0 < first <= last <= 65535
    for sock_type in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, sock_type) as s:
            s.bind(("127.0.0.1", 0))
            assert first <= s.getsockname()[1] <= last


def test_an_unbound_udp_sender_gets_a_port_from_the_same_range():
    first, last = A.ephemeral_port_range()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.bind(("127.0.0.1", 0))
        sender.sendto(b"x", receiver.getsockname())
        assert first <= sender.getsockname()[1] <= last


def test_unprivileged_port_start_is_read_from_proc():
    assert A.unprivileged_port_start() == int(open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read())


def test_loopback_mac_is_all_zeros():
    assert A.mac_addresses().get("lo") == "00:00:00:00:00:00"


def test_plot_ports_draws_the_ranges_and_the_ports():
    import matplotlib

    matplotlib.use("Agg")
    fig = A.plot_ports([40000, 50000])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("registered 1024-49151" in label for label in labels)
    assert any("ephemeral range" in label for label in labels)


# ---------------------------------------------------------------------------------------------
# The checks the notebook's graded cells call
# ---------------------------------------------------------------------------------------------
def reversed_int_to_ip(n):
    return ".".join(str((n >> s) & 0xFF) for s in (0, 8, 16, 24))


def lenient_ip_to_int(text):
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) + (b << 16) + (c << 8) + d


def test_the_checks_pass_the_references():
    C.check_ip_examples(A.ip_to_int, A.int_to_ip)
    C.check_ip_properties(A.ip_to_int, A.int_to_ip)
    C.check_ip_rejects_malformed(A.ip_to_int, A.int_to_ip)
    C.check_ports_examples(A.classify_port)
    C.check_ports_boundaries(A.classify_port)
    C.check_private_loopback_examples(A.is_private, A.is_loopback)
    C.check_private_loopback_ranges(A.is_private, A.is_loopback)


def test_reversed_byte_order_is_caught_with_the_call_and_a_hint():
    with pytest.raises(YourCodeError, match=r"int_to_ip\(3232235778\) returned '2.1.168.192'; expected '192.168.1.2'. Take the bytes"):
        C.check_ip_examples(A.ip_to_int, reversed_int_to_ip)


def test_accepting_256_is_caught():
    with pytest.raises(YourCodeError, match=r"ip_to_int\('256.1.1.1'\) returned 4295033089; it should raise ValueError"):
        C.check_ip_examples(lenient_ip_to_int, A.int_to_ip)


def test_a_wrong_exception_type_is_caught():
    with pytest.raises(YourCodeError, match=r"ip_to_int\(None\) raised AttributeError: .*; it should raise ValueError"):
        C.check_ip_rejects_malformed(lambda t: A.ip_to_int(t) if isinstance(t, str) else t.split("."), A.int_to_ip)


def test_off_by_one_port_boundary_is_caught():
    def off_by_one(port):
        return A.classify_port(port) if port != 1023 else "registered"

    C.check_ports_examples(off_by_one)  # the visible examples do not reach the edge...
    with pytest.raises(YourCodeError, match=r"classify_port\(1023\) returned 'registered'; expected 'well-known'"):
        C.check_ports_boundaries(off_by_one)  # ...the hidden test does


def test_ipaddress_is_private_is_not_rfc_1918():
    def wide(text):
        A.is_private(text)  # same errors
        return ipaddress.ip_address(text).is_private

    with pytest.raises(YourCodeError, match=r"is_private\('127.0.0.2'\) returned True; expected False"):
        C.check_private_loopback_examples(wide, A.is_loopback)


def test_generated_cases_are_the_same_every_time():
    strategy = C._ipv4_strategies()[1]
    assert C._generated(strategy, 50) == C._generated(strategy, 50)


def test_a_blank_exercise_fails_with_not_implemented_error():
    def blank(*args):
        raise NotImplementedError()

    for check in (lambda: C.check_ip_examples(blank, blank), lambda: C.check_ports_boundaries(blank),
                  lambda: C.check_private_loopback_ranges(blank, blank)):
        with pytest.raises(NotImplementedError):
            check()


def test_booleans_are_not_ints_for_the_checks():
    """Python's bool is an int subclass; the course's rule is that True and False are not numbers:
    an implementation that takes True for 1 loses the hidden cases."""
    def int_to_ip_taking_bools(n):
        return A.int_to_ip(int(n)) if isinstance(n, bool) else A.int_to_ip(n)

    def classify_taking_bools(p):
        return A.classify_port(int(p)) if isinstance(p, bool) else A.classify_port(p)

    with pytest.raises(YourCodeError, match=r"int_to_ip\(True\) returned '0.0.0.1'; it should raise ValueError"):
        C.check_ip_rejects_malformed(A.ip_to_int, int_to_ip_taking_bools)
    with pytest.raises(YourCodeError, match=r"classify_port\(True\) returned 'well-known'; it should raise ValueError"):
        C.check_ports_boundaries(classify_taking_bools)


def test_str_isdigit_is_caught_by_the_hidden_malformed_cases():
    def isdigit_ip_to_int(text):
        if not isinstance(text, str):
            raise ValueError(text)
        groups = text.split(".")
        if len(groups) != 4 or not all(g.isdigit() and (g == "0" or g[0] != "0") and int(g) <= 255 for g in groups):
            raise ValueError(text)
        return sum(int(g) << s for g, s in zip(groups, (24, 16, 8, 0)))

    C.check_ip_examples(isdigit_ip_to_int, A.int_to_ip)
    with pytest.raises(YourCodeError, match="returned"):
        C.check_ip_rejects_malformed(isdigit_ip_to_int, A.int_to_ip)


def test_agreement_with_ipaddress_on_chosen_addresses():
    C.check_ip_agrees_with_ipaddress(A.ip_to_int, A.int_to_ip, [A.ip_to_int("172.16.254.1")])
    with pytest.raises(YourCodeError, match=r"int_to_ip\(2886794753\) returned '1.254.16.172'"):
        C.check_ip_agrees_with_ipaddress(A.ip_to_int, lambda n: ".".join(str(n >> s & 255) for s in (0, 8, 16, 24)),
                                         [2886794753])


# ----------------------------------------------------------------------------------------------
# Where the checks live
# ----------------------------------------------------------------------------------------------
def test_check_names_of_earlier_releases_reach_the_checks_module():
    """Notebooks of earlier releases call addresses.check_ip_examples(...): it is course.checks.addresses' own."""
    for name in C.__all__:
        if name.startswith("check_"):
            assert getattr(A, name) is getattr(C, name)
    with pytest.raises(AttributeError, match="module 'course.addresses' has no attribute 'PRIVACY_EXAMPLES'"):
        A.PRIVACY_EXAMPLES  # only check_* names are forwarded


def test_the_core_loads_nothing_of_the_course_but_errors():
    """course.addresses is a pure core: importing it loads no other course module (the checks import
    it, never the reverse)."""
    code = "import sys, course.addresses; print(sorted(m for m in sys.modules if m.split('.')[0] == 'course'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "['course', 'course.addresses', 'course.errors']"
