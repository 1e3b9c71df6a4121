"""course.udplab: 03's UDP on the lab network (issue #11, phase 2): IP fragments, and a link that
loses one of them.

Without namespaces: the recording says what the lesson says (every packet computed here from the
MTU, independently of the module), the capture reader groups fragments by datagram, and a refused
lab prints one line and returns the recording. With the lab (as an unused uid with /usr/bin/python3,
conftest's `as_user`; skipped where no lab can be built, a failure under CI): a live run gives
the same evidence as the recording, two runs at once too, the notebook's own lab cells run live and
print what the recording shows, and in sandboxes that refuse user namespaces they print one line and
the recording, with no traceback. The notebook tests at the end run the solution and the blank
release in a real kernel and read what the lab cells showed.
"""
from __future__ import annotations

import contextlib
import io
import json
import struct
import sys

import nbformat
import pytest

from conftest import REPO
from course import udplab
from course.errors import SetupError
from course.netlab import lesson
from course.netlab.pcap import Frame
from lab_support import IN_CI, cell_sources, cells_where_labs_are_refused, errors_of, executed_cells, text_of, udp_packet

LAB_CELLS = {"u3lab-02": "fragments", "u3lab-05": "lost_fragment"}  # the notebook's lab cells, by cell id
NOTEBOOK = "03-udp/03-udp.ipynb"


def packets(size: int, ttl: int, mtu: int = 1500) -> list[list]:
    """The IP packets of a UDP datagram of `size` bytes of data on a link of `mtu`, as
    fragments_of lists them: [offset, IP payload bytes, MF, DF, TTL]. Whole: DF set; fragments:
    every one but the last carries the largest multiple of 8 that fits, with MF."""
    udp = size + 8
    if udp + 20 <= mtu:
        return [[0, udp, False, True, ttl]]
    piece = (mtu - 20) // 8 * 8
    rows = [[offset, piece, True, False, ttl] for offset in range(0, udp - piece, piece)]
    last = len(rows) * piece
    return rows + [[last, udp - last, False, False, ttl]]


SIZES = (1472, 1473, 4000, 65507)
FRAGMENTS_EVIDENCE = {
    "mtu": 1500,
    "datagrams": [{"size": s, "sent": packets(s, 64), "arrived": packets(s, 63), "received": s} for s in SIZES],
    "refused": {"size": 1473, "error": {"errno": "EMSGSIZE", "strerror": "Message too long"}},
    "client": {"FragOKs": 3, "FragCreates": 2 + 3 + 45, "FragFails": 0},
    "server": {"ReasmReqds": 2 + 3 + 45, "ReasmOKs": 3, "ReasmFails": 0, "InDatagrams": 4},
}
SENT, ARRIVED = packets(4000, 64), packets(4000, 63)
LOST_FRAGMENT_EVIDENCE = {
    "mtu": 1500,
    "loss": "the 2nd UDP packet",
    "attempts": [{"tag": "attempt 1", "size": 4000, "sent": SENT, "arrived": [ARRIVED[0], ARRIVED[2]]},  # the 2nd: lost
                 {"tag": "attempt 2", "size": 4000, "sent": SENT, "arrived": ARRIVED}],
    "received": ["attempt 2"],
    "lost_by_the_link": 1,
    "server": {"ReasmReqds": 5, "ReasmOKs": 1, "ReasmTimeout": 1, "ReasmFails": 1, "InDatagrams": 1},
    "ipfrag_time": {"default": 30, "set": 1},
    "icmp": [{"type": 11, "code": 1, "from": "198.51.100.10", "about": "attempt 1"}],
    "client_so_error": 0,
    "client_heard": False,
}


# ----------------------------------------------------------------------------------------------
# Without namespaces
# ----------------------------------------------------------------------------------------------
def test_the_packets_the_lesson_counts():
    assert packets(1472, 64) == [[0, 1480, False, True, 64]]
    assert packets(1473, 64) == [[0, 1480, True, False, 64], [1480, 1, False, False, 64]]
    assert [row[1] for row in packets(4000, 64)] == [1480, 1480, 1048]
    big = packets(65507, 64)
    assert len(big) == 45 and big[-1][:2] == [65120, 395] and sum(row[1] for row in big) == 65507 + 8


def test_the_recording_shows_what_the_lesson_says():
    frags, lost = udplab.load_recording("fragments"), udplab.load_recording("lost_fragment")
    assert frags["capture"] == lost["capture"] == "recording" and "on Linux" in frags["recorded"]
    assert udplab.fragments_evidence(frags) == FRAGMENTS_EVIDENCE
    assert udplab.lost_fragment_evidence(lost) == LOST_FRAGMENT_EVIDENCE
    assert lesson.recording(udplab.RECORDING)["how"].endswith("as an ordinary user")
    assert udplab.SIZES == SIZES and str(udplab.LOSS) == LOST_FRAGMENT_EVIDENCE["loss"]


def test_loading_the_recording_gives_a_copy():
    first = udplab.load_recording("lost_fragment")
    first["attempts"].clear()
    assert len(udplab.load_recording("lost_fragment")["attempts"]) == 2


def test_the_odds_count_the_packets_the_capture_counted():
    recorded = udplab.load_recording("fragments")["datagrams"]
    odds = udplab.arrival_odds(0.01)
    assert [(size, k) for size, k, _ in odds] == [(d["size"], len(d["sent"])) for d in recorded]
    assert [round(q, 3) for _, _, q in odds] == [0.99, 0.98, 0.970, 0.636]
    assert udplab.arrival_odds(0.0)[-1][2] == 1.0


def test_the_capture_reader_groups_fragments_by_datagram_and_reads_the_tag_from_the_first():
    body = struct.pack("!HHHH", 40000, 50000, 8 + 2000, 0) + b"attempt 7." + bytes(1990)
    whole = struct.pack("!HHHH", 40000, 50000, 8 + 5, 0) + b"small"
    frames = [udp_packet(9, 1480, body[1480:], False),  # the last piece first: sorted by offset
              udp_packet(9, 0, body[:1480], True),
              udp_packet(10, 0, whole, False, df=True),
              udp_packet(11, 1480, body[1480:], False),  # a datagram whose first fragment is missing
              udp_packet(12, 0, whole, False, src="192.0.2.3")]  # from elsewhere
    found = udplab.fragments_of([Frame(i, True, f) for i, f in enumerate(frames)], "192.0.2.2", "198.51.100.10")
    assert [(d["tag"], d["size"], d["ident"]) for d in found] == [("attempt 7", 2000, 9), ("small", 5, 10), (None, None, 11)]
    assert found[0]["packets"] == [[0, 1480, True, False, 64], [1480, 528, False, False, 64]]
    assert found[1]["packets"] == [[0, 13, False, True, 64]]


def refused(monkeypatch, sentence="no lab network here: a test refuses it"):
    def refuse(**_):
        raise SetupError(sentence)

    monkeypatch.setattr(udplab, "udp_path", refuse)
    return sentence


def test_a_refused_lab_prints_one_line_and_gives_the_recording(monkeypatch, capsys):
    sentence = refused(monkeypatch)
    frags, lost = udplab.fragments(), udplab.lost_fragment()
    assert capsys.readouterr().out.splitlines() == [f"recording shown, {sentence}"] * 2
    assert frags["capture"] == lost["capture"] == "recording" and frags["why"] == lost["why"] == sentence
    assert udplab.fragments_evidence(frags) == FRAGMENTS_EVIDENCE
    assert udplab.lost_fragment_evidence(lost) == LOST_FRAGMENT_EVIDENCE


def test_what_the_cells_show_from_the_recording(capsys):
    udplab.show_fragments(udplab.load_recording("fragments"))
    udplab.show_lost_fragment(udplab.load_recording("lost_fragment"))
    out = capsys.readouterr().out
    assert out.count("the recording, made live on") == 2
    assert "1473 bytes   2           1480 MF at 0, 1 at 1480 " in out and out.count(" 1473 bytes\n") == 1
    assert "65507 bytes  45          44 x 1480 MF at 0 to 63640, 395 at 65120 " in out
    assert "the same packets, TTL 64 -> 63" in out and "FragCreates 50" in out and "ReasmOKs 3" in out
    assert "sendto of 1473 bytes raised OSError EMSGSIZE (Message too long), sent nothing" in out
    assert "and loopback's MTU on this machine: " in out
    assert "attempt 1   1480 MF at 0, 1480 MF at 1480, 1048 at 2960        1480 MF at 0, 1048 at 2960   nothing" in out
    assert "attempt 2   1480 MF at 0, 1480 MF at 1480, 1048 at 2960        all of them                  4000 bytes" in out
    assert "net.ipv4.ipfrag_time = 1 s (set by the lab; the default is 30 s)" in out
    assert "ICMP type 11 code 1 (time exceeded, fragment reassembly) from 198.51.100.10 to the client, about attempt 1" in out
    assert "SO_ERROR 0, nothing to read" in out and "65507 bytes of data, 45 packets: 63.6 %" in out
    assert max(len(line) for line in out.splitlines()) <= 120


def test_the_lab_cells_are_the_same_in_the_release_and_need_no_learner_code():
    sources = {}
    for root in ("solutions", "notebooks"):
        nb = nbformat.read(REPO / root / NOTEBOOK, as_version=4)
        sources[root] = {c.id: c.source for c in nb.cells if c.id in LAB_CELLS}
        assert set(sources[root]) == set(LAB_CELLS)
        assert all("nbgrader" not in c.metadata for c in nb.cells if c.id in LAB_CELLS or c.id.startswith("u3lab-"))
    assert sources["solutions"] == sources["notebooks"]
    for source in sources["solutions"].values():
        assert not any(name in source for name in ("request_sum", "serve_sums", "ChatPeer"))


# ----------------------------------------------------------------------------------------------
# Real labs, as an ordinary user
# ----------------------------------------------------------------------------------------------
LIVE = """
    from course import udplab
    frags, lost = udplab.fragments(), udplab.lost_fragment()
    report({"fragments": frags, "lost_fragment": lost, "fragments_evidence": udplab.fragments_evidence(frags),
            "lost_fragment_evidence": udplab.lost_fragment_evidence(lost), "children": children()})
"""


def test_live_as_an_ordinary_user_the_same_evidence_as_the_recording(as_user):
    _, results = as_user.run(LIVE)
    r = results[0]
    assert r["fragments"]["capture"] == r["lost_fragment"]["capture"] == "live"
    assert r["fragments_evidence"] == FRAGMENTS_EVIDENCE == udplab.fragments_evidence(udplab.load_recording("fragments"))
    assert r["lost_fragment_evidence"] == LOST_FRAGMENT_EVIDENCE
    assert r["lost_fragment_evidence"] == udplab.lost_fragment_evidence(udplab.load_recording("lost_fragment"))
    assert r["children"] == [], "a lab left a process behind"
    assert r["lost_fragment"]["waited_for_the_reassembly_timeout"] < 15  # 1 s of ipfrag_time, not Linux's 30


def test_two_live_runs_at_once_give_the_same_evidence(as_user):
    for (r,) in as_user.run_together(LIVE):
        assert r["fragments_evidence"] == FRAGMENTS_EVIDENCE and r["lost_fragment_evidence"] == LOST_FRAGMENT_EVIDENCE


SETUP = "from course import udplab"


def release_cells() -> dict:
    return cell_sources(REPO / "notebooks" / NOTEBOOK, LAB_CELLS)


def shown_from_the_recording(kind: str) -> str:
    """What the cell of `kind` prints from the recording, without its first line (where it comes from)."""
    out = io.StringIO()
    show = {"fragments": udplab.show_fragments, "lost_fragment": udplab.show_lost_fragment}[kind]
    with contextlib.redirect_stdout(out):
        show(udplab.load_recording(kind))
    return out.getvalue().split("\n", 1)[1]


def test_the_notebook_cells_run_live_as_an_ordinary_user_and_show_what_the_recording_shows(as_user):
    _, r, _ = as_user.run_cells(release_cells(), SETUP)
    for cid, kind in LAB_CELLS.items():
        assert r["cells"][cid]["error"] is None, r["cells"][cid]
        first, rest = r["cells"][cid]["out"].split("\n", 1)
        assert first.startswith("live in the lab (3 network namespaces: client, router, server; links of MTU 1500; "), first
        assert rest == shown_from_the_recording(kind)


def test_where_user_namespaces_are_refused_the_notebook_cells_print_one_line_and_the_recording(as_user):
    for name, (reason, r) in cells_where_labs_are_refused(as_user, release_cells(), SETUP).items():
        for cid, kind in LAB_CELLS.items():
            shown = r["cells"][cid]
            assert shown["seconds"] < 10, f"{name}: the {kind} cell took {shown['seconds']:.1f} s to give up"
            first, second, *rest = shown["lines"]
            assert first.startswith("recording shown, no lab network here: ") and reason in first
            assert first.endswith("(notebooks show a recording instead)")
            assert not any("no lab network" in line for line in [second, *rest]), (name, shown["out"])
            assert second == f"the recording, made live on {udplab.load_recording(kind)['recorded']}"


# ----------------------------------------------------------------------------------------------
# The notebook's lab cells in a real kernel: the solution, and the blank release
# ----------------------------------------------------------------------------------------------
def executed_lab_cells(root: str) -> dict:
    return executed_cells(REPO / root / NOTEBOOK, LAB_CELLS)


@pytest.mark.notebooks
@pytest.mark.parametrize("root", ["solutions", "notebooks"])
def test_in_the_solution_and_the_blank_release_the_lab_cells_run(root):
    cells = executed_lab_cells(root)
    assert not any(errors_of(out) for out in cells.values())
    live = text_of(cells["u3lab-02"]).startswith("live in the lab")
    if IN_CI:
        assert live, "under CI the lab cells run live"
    for cid in LAB_CELLS:
        assert text_of(cells[cid]).startswith("live in the lab") == live, text_of(cells[cid])
    assert "65507 bytes  45 " in text_of(cells["u3lab-02"])
    assert "attempt 2   " in text_of(cells["u3lab-05"]) and "ReasmTimeout 1" in text_of(cells["u3lab-05"])


def test_the_evidence_is_plain_data():
    for kind, evidence in (("fragments", udplab.fragments_evidence), ("lost_fragment", udplab.lost_fragment_evidence)):
        data = evidence(udplab.load_recording(kind))
        assert json.loads(json.dumps(data)) == data


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
