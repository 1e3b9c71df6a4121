"""course.natlab: 01's NAT on the lab network (issue #11, phase 2).

Without namespaces: the recording says what the lesson says, a learner's table is compared by
behaviour (the reference passes, wrong tables are named), and a refused lab prints one line and
returns the recording. With the lab (as an unused uid with /usr/bin/python3, conftest's `as_user`;
skipped where no lab can be built, a failure under CI): a live run gives the same evidence as the
recording (also two at once), the notebook's own lab cells run live, and in sandboxes that refuse
user namespaces the notebook's own lab cells print one line and the recording, with no traceback.
The notebook tests at the end run the solution and the blank release in a real kernel and read what
the lab cells showed.
"""
from __future__ import annotations

import json
import sys

import nbformat
import pytest

from conftest import REPO
from course import nat, natlab
from course.errors import SetupError
from course.netlab import lesson
from lab_support import IN_CI, cell_sources, cells_where_labs_are_refused, errors_of, executed_cells, text_of

LAB_CELLS = {"a9c1e502": "flows", "a9c1e505": "probes", "a9c1e508": "compare"}  # the notebook's lab cells, by cell id
NOTEBOOK = "01-addresses-ports-nat/01-addresses-ports-nat.ipynb"

FLOWS_EVIDENCE = {
    "flows": [("laptop", "A"), ("phone", "A"), ("laptop", "B"), ("phone", "B")],
    "public_addresses": ["203.0.113.1"],
    "kept_the_private_port": [True, False, True, False],  # the phone's 6789 toward A was taken: another port
    "same_public_as": [0, 1, 0, 1],  # each host keeps its public endpoint toward B (endpoint-independent mapping)
    "answers_reached_the_sender": [True] * 4,
    "conntrack_agrees_with_the_server": [True] * 4,
    "conntrack_entries": 4,
    "udp_timeouts": {"net.netfilter.nf_conntrack_udp_timeout": 30, "net.netfilter.nf_conntrack_udp_timeout_stream": 120},
}
PROBES_EVIDENCE = {
    "nat": {"outcomes": {"reply": "laptop", "other-port": "router", "stranger": "router", "unused-port": "router",
                         "private-address": "laptop"},
            "counted": {"input": 3, "forward": 1}, "udp_noports": 3},
    "firewall": {"outcomes": {"reply": "laptop", "other-port": "dropped", "stranger": "dropped", "unused-port": "dropped",
                              "private-address": "dropped"},
                 "counted": {"input": 3, "forward": 1}, "udp_noports": 0},
}


def as_json(value):
    return json.loads(json.dumps(value))  # tuples as lists, as a result that crossed a process boundary


# ----------------------------------------------------------------------------------------------
# Without namespaces
# ----------------------------------------------------------------------------------------------
def test_the_recording_shows_what_the_lesson_says():
    flows, probes = natlab.load_recording("flows"), natlab.load_recording("probes")
    assert flows["capture"] == probes["capture"] == "recording" and "on Linux" in flows["recorded"]
    assert natlab.flows_evidence(flows) == FLOWS_EVIDENCE
    assert natlab.probes_evidence(probes) == PROBES_EVIDENCE
    assert lesson.recording(natlab.RECORDING)["how"].endswith("as an ordinary user")
    laptop, phone = flows["flows"][0], flows["flows"][1]
    assert laptop["server_saw"] == "203.0.113.1:6789" and 1024 <= int(phone["server_saw"].rsplit(":", 1)[1]) <= 65535


def test_loading_the_recording_gives_a_copy():
    first = natlab.load_recording("flows")
    first["flows"].clear()
    assert len(natlab.load_recording("flows")["flows"]) == 4


def refused(monkeypatch, sentence="no lab network here: a test refuses it"):
    def refuse(**_):
        raise SetupError(sentence)

    monkeypatch.setattr(natlab, "home_router", refuse)
    return sentence


def test_a_refused_lab_prints_one_line_and_gives_the_recording(monkeypatch, capsys):
    sentence = refused(monkeypatch)
    flows, probes = natlab.flows(), natlab.probes()
    out = capsys.readouterr().out
    assert out.splitlines() == [f"recording shown, {sentence}"] * 2
    assert flows["capture"] == probes["capture"] == "recording" and flows["why"] == probes["why"] == sentence
    assert natlab.flows_evidence(flows) == FLOWS_EVIDENCE and natlab.probes_evidence(probes) == PROBES_EVIDENCE


def test_what_the_cells_show_from_the_recording(capsys):
    flows, probes = natlab.load_recording("flows"), natlab.load_recording("probes")
    natlab.show_flows(flows)
    natlab.show_probes(probes)
    assert natlab.compare(nat.NatTable, flows, probes) == []
    out = capsys.readouterr().out
    assert "the recording, made live on" in out
    assert "laptop 192.168.1.2:6789 -> A 198.51.100.10:" in out and "conntrack -L" in out
    assert "from the stranger, to 192.168.1.2:6789 itself  reached the laptop         dropped by the firewall" in out
    assert "the router counted as UDP NoPorts              3                          0" in out
    assert "outbound: 203.0.113.1:1024" in out and "the same behaviour" in out
    assert max(len(line) for line in out.splitlines()) <= 120


class NewPortPerPacket(nat.NatTable):
    """Forgets its flows: every datagram leaves with the next port."""

    def outbound(self, protocol, private, remote):
        self._public_of.pop((protocol, tuple(private)), None)
        return super().outbound(protocol, private, remote)


class NoRemoteFilter(nat.NatTable):
    def inbound(self, protocol, public_port, remote):
        return self._private_of.get((protocol, public_port))


class FiltersByAddressOnly(nat.NatTable):
    def inbound(self, protocol, public_port, remote):
        private = self._private_of.get((protocol, public_port))
        sent_to = {r[0] for r in self._remotes.get((protocol, public_port), ())}
        return private if private is not None and remote[0] in sent_to else None


class PortOnly(nat.NatTable):
    def outbound(self, protocol, private, remote):
        return super().outbound(protocol, private, remote)[1]


class Raises(nat.NatTable):
    def inbound(self, protocol, public_port, remote):
        raise KeyError(public_port)


class Blank:
    def __init__(self, public_ip, public_ports):
        raise NotImplementedError()


@pytest.mark.parametrize("table, expect", [
    (NewPortPerPacket, ["the kernel gave flows"]),
    (NoRemoteFilter, ["probe 'other-port': the router did not let it through", "probe 'stranger': the router did not let"]),
    (FiltersByAddressOnly, ["probe 'other-port': the router did not let it through, your table sends it to ('192.168.1.2', 6789)"]),
    (PortOnly, ["outbound should give (public_ip, public_port) with public_ip '203.0.113.1'; it gave laptop -> server A: 1024",
                "outbound for the laptop gave 1024, not (public_ip, public_port)"]),
    (Raises, [f"probe {name!r}: your table's inbound raised KeyError: 10" for name in ("reply", "other-port", "stranger", "unused-port")]),
])  # fmt: skip
def test_a_wrong_table_is_named_by_what_it_does_differently(table, expect, capsys):
    found = natlab.compare(table, natlab.load_recording("flows"), natlab.load_recording("probes"))
    assert len(found) == len(expect) and all(f.startswith(e) for f, e in zip(found, expect)), found
    out = capsys.readouterr().out
    assert f"your table behaves differently from the router's kernel ({len(found)}):" in out


def test_a_blank_table_raises_its_stub_error_unchanged():
    with pytest.raises(NotImplementedError):
        natlab.compare(Blank, natlab.load_recording("flows"), natlab.load_recording("probes"))


def test_the_lab_cells_are_the_same_in_the_release_and_need_no_learner_code_but_the_comparison():
    sources = {}
    for root in ("solutions", "notebooks"):
        nb = nbformat.read(REPO / root / NOTEBOOK, as_version=4)
        sources[root] = {c.id: c.source for c in nb.cells if c.id in LAB_CELLS}
        assert set(sources[root]) == set(LAB_CELLS)
    assert sources["solutions"] == sources["notebooks"]
    for cid, kind in LAB_CELLS.items():
        assert ("NatTable" in sources["solutions"][cid]) == (kind == "compare")


# ----------------------------------------------------------------------------------------------
# Real labs, as an ordinary user
# ----------------------------------------------------------------------------------------------
LIVE = """
    from course import natlab
    flows, probes = natlab.flows(), natlab.probes()
    report({"flows": flows, "probes": probes, "flows_evidence": natlab.flows_evidence(flows),
            "probes_evidence": natlab.probes_evidence(probes), "children": children()})
"""


def test_live_as_an_ordinary_user_the_same_evidence_as_the_recording(as_user):
    _, results = as_user.run(LIVE)
    r = results[0]
    assert r["flows"]["capture"] == r["probes"]["capture"] == "live"
    assert r["flows_evidence"] == as_json(FLOWS_EVIDENCE) == as_json(natlab.flows_evidence(natlab.load_recording("flows")))
    assert r["probes_evidence"] == PROBES_EVIDENCE == natlab.probes_evidence(natlab.load_recording("probes"))
    assert r["children"] == [], "a lab left a process behind"
    assert natlab.compare(nat.NatTable, r["flows"], r["probes"]) == []


def test_two_live_runs_at_once_give_the_same_evidence(as_user):
    for (r,) in as_user.run_together(LIVE):
        assert r["flows_evidence"] == as_json(FLOWS_EVIDENCE) and r["probes_evidence"] == PROBES_EVIDENCE


SETUP = """
    from course import natlab
    from course.nat import NatTable
"""


def release_cells() -> dict:
    return cell_sources(REPO / "notebooks" / NOTEBOOK, LAB_CELLS)


def test_the_notebook_cells_run_live_as_an_ordinary_user(as_user):
    _, r, _ = as_user.run_cells(release_cells(), SETUP, extra="differences")
    assert r["extra"] == []
    for cid, kind in LAB_CELLS.items():
        shown = r["cells"][cid]
        assert shown["error"] is None and "Traceback" not in shown["out"] and "no lab network" not in shown["out"], shown
        if kind != "compare":
            assert shown["lines"][0].endswith("s)") and ", live in the lab (4 network namespaces" in shown["lines"][0]


def test_where_user_namespaces_are_refused_the_notebook_cells_print_one_line_and_the_recording(as_user):
    for name, (reason, r) in cells_where_labs_are_refused(as_user, release_cells(), SETUP, extra="differences").items():
        assert r["extra"] == [], name
        for cid, kind in LAB_CELLS.items():
            shown = r["cells"][cid]
            assert shown["seconds"] < 10, f"{name}: the {kind} cell took {shown['seconds']:.1f} s to give up"
            first, *rest = shown["lines"]
            if kind == "compare":
                assert "no lab network" not in shown["out"]  # it uses what the two cells before it returned
                continue
            assert first.startswith("recording shown, no lab network here: ") and reason in first
            assert first.endswith("(notebooks show a recording instead)")
            assert not any("no lab network" in line for line in rest), (name, shown["out"])
            assert rest[0].endswith(natlab.load_recording(kind)["recorded"])


# ----------------------------------------------------------------------------------------------
# The notebook's lab cells in a real kernel: the solution, and the blank release
# ----------------------------------------------------------------------------------------------
def executed_lab_cells(root: str) -> dict:
    return executed_cells(REPO / root / NOTEBOOK, LAB_CELLS)


@pytest.mark.notebooks
def test_in_the_solution_the_lab_cells_run_and_the_table_behaves_as_the_kernel():
    cells = executed_lab_cells("solutions")
    assert not any(errors_of(out) for out in cells.values())
    live = "live in the lab" in text_of(cells["a9c1e502"])
    if IN_CI:
        assert live, "under CI the lab cells run live"
    for cid in ("a9c1e502", "a9c1e505"):
        assert ("live in the lab" in text_of(cells[cid])) == live
    assert "the same behaviour" in text_of(cells["a9c1e508"])


@pytest.mark.notebooks
def test_in_the_blank_release_the_lab_cells_run_and_the_comparison_shows_the_stub_in_one_line():
    cells = executed_lab_cells("notebooks")
    for cid in ("a9c1e502", "a9c1e505"):
        assert not errors_of(cells[cid]) and "the router" in text_of(cells[cid])
    (error,) = errors_of(cells["a9c1e508"])
    shown = "\n".join(error["traceback"]).splitlines()
    assert error["ename"] == "NotImplementedError" and len(shown) == 1 and "blank stub" in shown[0], shown


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
