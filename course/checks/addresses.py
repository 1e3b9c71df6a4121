"""The checks of assignment 01's address and port exercises (the graded cells call these).

Each compares the learner's function with the reference in `course.addresses` on a case table
through `course.checks.check_calls` (a deadline per call, the first difference as one sentence,
the calls as evidence). The hidden checks draw extra cases with hypothesis under a fixed seed
(`_generated`), so that a correct solution's evidence is the same in every run.

    from course.checks import addresses as check
    check.check_ip_examples(ip_to_int, int_to_ip)
"""
from __future__ import annotations

import ipaddress

from course.addresses import IPV4_MAX, classify_port, int_to_ip, ip_to_int, is_loopback, is_private
from course.checks import check_calls

__all__ = [
    "check_ip_examples",
    "check_ip_agrees_with_ipaddress",
    "check_ip_properties",
    "check_ip_rejects_malformed",
    "check_ports_examples",
    "check_ports_boundaries",
    "PRIVACY_EXAMPLES",
    "check_private_loopback_examples",
    "check_private_loopback_ranges",
]


def _generated(strategy, count: int) -> list:
    """`count` values drawn by hypothesis with a fixed seed (derandomize): the same list in every
    run, so that the evidence of a correct solution does not change between runs."""
    from hypothesis import HealthCheck, Phase, given, settings

    values: list = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value):
        values.append(value)

    collect()
    return values


def _ipv4_strategies():
    from hypothesis import strategies as st

    valid = st.integers(0, IPV4_MAX).map(int_to_ip)
    odd_groups = st.sampled_from(["", "0", "00", "01", "007", "255", "256", "999", "1000", "-1", "+1",
                                  " 1", "1 ", "a", "0x1", "1e2", "\u0661", "\uff11", "1\n"])
    group = st.one_of(st.integers(0, 300).map(str), odd_groups)
    near = st.lists(group, min_size=1, max_size=6).map(".".join)
    dotted = st.text(alphabet="0123456789.", max_size=16)
    return valid, st.one_of(near, dotted, valid)


def check_ip_examples(ip_to_int_fn, int_to_ip_fn) -> None:
    """Visible self-check: a few addresses both ways, and the round trip."""
    cases = ["192.168.1.2", "127.0.0.1", "0.0.0.0", "255.255.255.255", "116.226.52.212", "10.0.0.1"]
    hint = "The first group is the most significant byte: n = a*2**24 + b*2**16 + c*2**8 + d."
    check_calls(ip_to_int_fn, ip_to_int, [(c,) for c in cases], name="ip_to_int", hint=hint)
    check_calls(int_to_ip_fn, int_to_ip, [(ip_to_int(c),) for c in cases], name="int_to_ip",
                hint="Take the bytes from the most significant down: (n >> 24) & 0xFF first.")
    check_calls(ip_to_int_fn, ip_to_int, [("256.1.1.1",), ("1.2.3",)], name="ip_to_int",
                hint="Check the number of groups and that each is 0-255.")


def check_ip_agrees_with_ipaddress(ip_to_int_fn, int_to_ip_fn, numbers: list[int]) -> None:
    """Both conversions give what `ipaddress` gives, for each address (as an int) in `numbers`:
    int_to_ip(n) == str(IPv4Address(n)) and ip_to_int(that text) == int(IPv4Address(that text))."""
    check_calls(int_to_ip_fn, lambda n: str(ipaddress.IPv4Address(n)), [(n,) for n in numbers], name="int_to_ip",
                hint="Compare with str(ipaddress.IPv4Address(n)).")
    check_calls(ip_to_int_fn, lambda t: int(ipaddress.IPv4Address(t)), [(int_to_ip(n),) for n in numbers],
                name="ip_to_int", hint="Compare with int(ipaddress.IPv4Address(text)).")


def check_ip_properties(ip_to_int_fn, int_to_ip_fn, count: int = 150) -> None:
    """Hidden: agreement with `ipaddress` on the edges and on addresses drawn by hypothesis."""
    from hypothesis import strategies as st

    numbers = [0, 1, 255, 256, 65535, 2**24, IPV4_MAX - 1, IPV4_MAX] + _generated(st.integers(0, IPV4_MAX), count)
    check_ip_agrees_with_ipaddress(ip_to_int_fn, int_to_ip_fn, numbers)


def check_ip_rejects_malformed(ip_to_int_fn, int_to_ip_fn, count: int = 200) -> None:
    """Hidden: malformed input raises ValueError exactly where the reference (and ipaddress) does."""
    _, mixed = _ipv4_strategies()
    texts = ["256.1.1.1", "1.2.3", "1.2.3.4.5", "", "127.1", "01.2.3.4", "1.2.3.04", "1..2.3", "1.2.3.4 ",
             " 1.2.3.4", "a.b.c.d", "-1.2.3.4", "1.2.3.4/32", "0x7f.0.0.1", "\u0661.2.3.4", "localhost",
             "1.2.3.256", "999.0.0.0", "+1.2.3.4", "1.2.3.4.", ".1.2.3", "1_0.2.3.4", "1.2.3.\uff14",
             "0.0.0.00"] + _generated(mixed, count)
    others = [None, 3232235778, b"127.0.0.1", ["127.0.0.1"], 1.5]
    check_calls(ip_to_int_fn, ip_to_int, [(t,) for t in texts + others], name="ip_to_int",
                hint="Each group must be 1-3 ASCII digits, 0-255, without a leading zero; a non-str raises ValueError.")
    check_calls(int_to_ip_fn, int_to_ip, [(n,) for n in (-1, 2**32, 2**40, -(2**32), "1", 1.0, None, True, False)],
                name="int_to_ip", hint="Only an int in 0 .. 2**32-1 is an IPv4 address (True and False are not ints "
                                       "here); raise ValueError otherwise.")


def check_ports_examples(classify_fn) -> None:
    """Visible self-check: one port of each range and one outside."""
    cases = [(80,), (8080,), (50000,), (0,), (65535,), (70000,)]
    check_calls(classify_fn, classify_port, cases, name="classify_port",
                hint="Well-known 0-1023, registered 1024-49151, dynamic 49152-65535, ValueError otherwise.")


def check_ports_boundaries(classify_fn, count: int = 150) -> None:
    """Hidden: every boundary, numbers drawn by hypothesis, and values that are not ports."""
    from hypothesis import strategies as st

    edges = [-1, 0, 1, 1023, 1024, 1025, 49151, 49152, 49153, 65534, 65535, 65536, -65536, 2**31]
    drawn = _generated(st.integers(-2000, 70000), count)
    wrong = ["80", 80.0, None, (80,), True, False]
    check_calls(classify_fn, classify_port, [(p,) for p in edges + drawn + wrong], name="classify_port",
                hint="Both ends of each range belong to it; a port that is not an int (True and False included) "
                     "raises ValueError.")


PRIVACY_EXAMPLES = ["192.168.1.2", "10.1.2.3", "172.16.0.1", "116.226.52.212", "127.0.0.2", "::1", "8.8.8.8"]


def check_private_loopback_examples(is_private_fn, is_loopback_fn) -> None:
    """Visible self-check: a handful of well-known addresses, and one that is not an address."""
    cases = [(a,) for a in PRIVACY_EXAMPLES] + [("localhost",)]
    check_calls(is_private_fn, is_private, cases, name="is_private",
                hint="Private means RFC 1918 (10/8, 172.16/12, 192.168/16) or fc00::/7; loopback is not private.")
    check_calls(is_loopback_fn, is_loopback, cases, name="is_loopback",
                hint="Loopback is all of 127.0.0.0/8 and ::1.")


def check_private_loopback_ranges(is_private_fn, is_loopback_fn, count: int = 120) -> None:
    """Hidden: the edges of every range, addresses drawn by hypothesis, IPv6, and non-addresses."""
    from hypothesis import strategies as st

    edges = ["9.255.255.255", "10.0.0.0", "10.255.255.255", "11.0.0.0", "172.15.255.255", "172.16.0.0",
             "172.31.255.255", "172.32.0.0", "192.167.255.255", "192.168.0.0", "192.168.255.255", "192.169.0.0",
             "126.255.255.255", "127.0.0.0", "127.255.255.255", "128.0.0.0", "169.254.1.1", "100.64.0.1",
             "0.0.0.0", "255.255.255.255", "::", "::1", "::2", "fc00::1", "fd12:3456::1", "fbff::1", "fe00::1",
             "fe80::1", "2001:db8::1"]
    drawn = [int_to_ip(n) for n in _generated(st.integers(0, IPV4_MAX), count)]
    # Addresses near the ranges, where the masks matter.
    near = [int_to_ip((base & 0xFF000000) | (n & 0x00FFFFFF)) for base, n in zip(
        [ip_to_int(x) for x in ("10.0.0.0", "172.0.0.0", "192.0.0.0", "127.0.0.0")] * 10,
        _generated(st.integers(0, IPV4_MAX), 40))]
    wrong = ["localhost", "256.0.0.1", "10.0.0", "", "::g", None, 167772161, b"10.0.0.1", b"\n\x00\x00\x01"]
    cases = [(a,) for a in edges + drawn + near + wrong]
    check_calls(is_private_fn, is_private, cases, name="is_private",
                hint="172.16.0.0/12 ends at 172.31.255.255; 127.x and 169.254.x are not private in RFC 1918.")
    check_calls(is_loopback_fn, is_loopback, cases, name="is_loopback",
                hint="Every address 127.0.0.0 - 127.255.255.255 is loopback, and ::1 in IPv6.")
