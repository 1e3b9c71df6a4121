"""Assignment 01: classic wrong answers lose points. Each case is the instructor's solution cell with
one bug put in, run through the whole notebook with a real kernel."""
import nbformat
import pytest

from autograder.execute import cell_by_grade_id
from notebook_cases import assert_loses_points, solution_of

ASSIGNMENT = "01-addresses-ports-nat"


def solution_source(grade_id: str) -> str:
    nb = nbformat.read(solution_of(ASSIGNMENT), as_version=4)
    return cell_by_grade_id(nb, grade_id).source


def with_bug(grade_id: str, old: str, new: str) -> str:
    source = solution_source(grade_id)
    assert source.count(old) == 1, f"{old!r} is not once in the solution cell {grade_id}"
    return source.replace(old, new)


WRONG = {
    "int_to_ip with the bytes reversed (little-endian)": (
        "ip-conversions",
        ("for shift in (24, 16, 8, 0))", "for shift in (0, 8, 16, 24))"),
        ["ip-examples", "ip-agrees-with-ipaddress"],
    ),
    "ip_to_int accepting 256.1.1.1": (
        "ip-conversions",
        ("        if int(group) > 255:\n            raise ValueError(f\"{group} in {text!r} is more than 255\")\n", ""),
        ["ip-examples", "ip-malformed-raises"],
    ),
    "ip_to_int accepting leading zeros (01.2.3.4)": (
        "ip-conversions",
        ('        if group[0] == "0" and len(group) > 1:\n            raise ValueError(f"{group!r} in {text!r} has a leading zero")\n', ""),
        ["ip-malformed-raises"],
    ),
    "classify_port with 1023 counted as registered": (
        "port-classification",
        ("if 0 <= port <= 1023:", "if 0 <= port < 1023:"),
        ["ports-boundaries"],
    ),
    "classify_port with 49151 counted as dynamic": (
        "port-classification",
        ("if 1024 <= port <= 49151:", "if 1024 <= port < 49151:"),
        ["ports-boundaries"],
    ),
    "is_private with ipaddress's wider is_private": (
        "private-loopback",
        ("    return any(ip.version == net.version and ip in net for net in map(ipaddress.ip_network, ranges))",
         "    return ip.is_private"),
        ["private-loopback-examples", "private-loopback-edges"],
    ),
    "is_loopback that knows only 127.0.0.1": (
        "private-loopback",
        ("        return int(ip) >> 24 == 127", "        return text == \"127.0.0.1\""),
        ["private-loopback-examples", "private-loopback-edges"],
    ),
    "a NAT table that allocates a new public port for every packet": (
        "nat-table",
        ("        if key not in self.port_of:", "        if True:"),
        ["nat-basics", "nat-rules", "nat-same-as-reference", "nat-real-traffic"],
    ),
    "a NAT table that forwards inbound datagrams from any remote": (
        "nat-table",
        ("        if private is None or tuple(remote) not in self.remotes[(protocol, public_port)]:",
         "        if private is None:"),
        ["nat-rules", "nat-same-as-reference", "nat-real-traffic"],
    ),
    "a NAT table that forwards inbound to an unknown port to the first private host": (
        "nat-table",
        ("        if private is None or tuple(remote) not in self.remotes[(protocol, public_port)]:\n            return None",
         "        if private is None or tuple(remote) not in self.remotes[(protocol, public_port)]:\n"
         "            return next(iter(self.private_of.values()), None)"),
        ["nat-basics", "nat-rules", "nat-same-as-reference", "nat-real-traffic"],
    ),
    "a NAT table that hands out the first port again when full": (
        "nat-table",
        ('                raise RuntimeError(f"no free public {protocol} port for {private}")',
         "                free = self.public_ports"),
        ["nat-rules", "nat-same-as-reference"],
    ),
    "a NAT table sharing one pool between TCP and UDP": (
        "nat-table",
        ("free = [p for p in self.public_ports if (protocol, p) not in self.private_of]",
         "free = [p for p in self.public_ports if p not in {q for _, q in self.private_of}]"),
        ["nat-rules"],
    ),
}


@pytest.mark.notebooks
@pytest.mark.parametrize("bug", list(WRONG), ids=list(WRONG))
def test_wrong_implementation_loses_points(bug):
    grade_id, (old, new), failing = WRONG[bug]
    assert_loses_points(ASSIGNMENT, grade_id, with_bug(grade_id, old, new), failing)
