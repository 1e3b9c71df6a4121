"""course.tcpstates: the table is the RFC 9293 machine, the reference agrees with what the Linux
kernel does on real loopback sockets, and the checks catch wrong machines with a useful sentence."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course import connection_life, tcpstates
from course.checks import tcpstates as tcpstates_check
from course.errors import YourCodeError
from course.kernel import TCP_STATES
from course.tcpstates import EVENTS, STATES, TRANSITIONS, run, step


def test_states_are_linux_names_and_the_table_uses_only_known_names():
    assert set(STATES) <= set(TCP_STATES.values())
    for (state, event), nxt in TRANSITIONS.items():
        assert state in STATES and nxt in STATES and event in EVENTS


def test_every_state_is_reachable_from_close():
    seen, frontier = {"CLOSE"}, ["CLOSE"]
    while frontier:
        s = frontier.pop()
        for (a, _), b in TRANSITIONS.items():
            if a == s and b not in seen:
                seen.add(b)
                frontier.append(b)
    assert seen == set(STATES)


def test_active_close_path_ends_in_time_wait_then_close():
    events = ["active_open/send SYN", "recv SYN+ACK", "close/send FIN", "recv ACK of FIN", "recv FIN", "timeout 2MSL"]
    assert run(events) == ["SYN_SENT", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE"]


def test_passive_close_path_goes_through_close_wait_and_last_ack():
    events = ["passive_open", "recv SYN", "recv ACK of SYN", "recv FIN", "close/send FIN", "recv ACK of FIN"]
    assert run(events) == ["LISTEN", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSE"]


def test_simultaneous_close_and_fin_ack_merged():
    assert run(["close/send FIN", "recv FIN", "recv ACK of FIN"], start="ESTABLISHED") == ["FIN_WAIT1", "CLOSING", "TIME_WAIT"]
    assert step("FIN_WAIT1", "recv FIN+ACK") == "TIME_WAIT"


@pytest.mark.parametrize("state", ["CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"])
def test_a_resent_fin_keeps_the_states_that_already_received_one(state):
    # RFC 9293 3.10.7.4: "CLOSE-WAIT STATE: Remain in the CLOSE-WAIT state" ... "TIME-WAIT STATE:
    # Remain in the TIME-WAIT state. Restart the 2 MSL time-wait timeout."
    assert step(state, "recv FIN") == state


def test_a_fin_in_syn_recv_leads_to_close_wait_and_fin_ack_happens_only_in_fin_wait1():
    assert step("SYN_RECV", "recv FIN") == "CLOSE_WAIT"
    assert [s for s in STATES if (s, "recv FIN+ACK") in TRANSITIONS] == ["FIN_WAIT1"]
    for state in ("CLOSE", "LISTEN", "SYN_SENT"):  # RFC 9293: "drop the segment and return"
        with pytest.raises(ValueError, match="does not list"):
            step(state, "recv FIN")


def test_rst_refuses_a_connection_and_returns_a_half_open_one_to_listen():
    assert run(["active_open/send SYN", "recv RST"]) == ["SYN_SENT", "CLOSE"]
    assert step("SYN_RECV", "recv RST") == "LISTEN"


@pytest.mark.parametrize(
    "state, event, says",
    [
        ("ESTABLISHED", "recv SYN+ACK", "in state ESTABLISHED is an event this table does not list"),
        ("OPEN", "recv FIN", "'OPEN' is not a TCP state"),
        ("LISTEN", "recv SYNACK", "'recv SYNACK' is not an event"),
        ("TIME_WAIT", "close/send FIN", "in state TIME_WAIT is an event this table does not list"),
    ],
)
def test_impossible_events_raise_value_error_naming_them(state, event, says):
    with pytest.raises(ValueError, match=says):
        step(state, event)


@given(st.lists(st.sampled_from(EVENTS), max_size=12))
@settings(max_examples=200, deadline=None)
def test_any_event_sequence_either_runs_through_known_states_or_raises_value_error(events):
    try:
        states = run(events)
    except ValueError:
        return
    assert len(states) == len(events) and set(states) <= set(STATES)


def test_events_from_lists_exactly_the_table_rows():
    assert tcpstates.events_from("FIN_WAIT1") == ["recv FIN", "recv ACK of FIN", "recv FIN+ACK", "recv RST"]


# ----------------------------------------------------------------------------------------------
# The kernel: every scenario on real sockets reaches the states the reference machine predicts
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", list(connection_life.SCENARIOS))
def test_kernel_goes_through_the_reference_states(scenario):
    observations = connection_life.observe(scenario)
    assert observations, f"{scenario} observed nothing"
    by_endpoint: dict[str, list[str]] = {}
    for o in observations:
        by_endpoint.setdefault(o.endpoint, []).extend(o.events)
        assert run(by_endpoint[o.endpoint])[-1] == o.observed


def test_the_scenarios_show_the_states_the_notebook_promises():
    seen = {o.observed for name in connection_life.SCENARIOS for o in connection_life.observe(name)}
    assert {"LISTEN", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE"} <= seen


def test_watch_records_last_ack_and_time_wait_in_a_timeline():
    rec = connection_life.watch("server half-closes first")
    assert rec.states("client")[-3:] == ["CLOSE_WAIT", "LAST_ACK", "CLOSE"]
    assert rec.states("server")[-1] == "TIME_WAIT"
    assert rec._thread is not None and not rec._thread.is_alive()


def test_unknown_scenario_is_a_value_error():
    with pytest.raises(ValueError, match="unknown scenario"):
        connection_life.observe("both crash")


# ----------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------
def with_change(state, event, nxt):
    def machine(s, e):
        if (s, e) == (state, event):
            if nxt is None:
                raise ValueError("nope")
            return nxt
        return step(s, e)

    return machine


def test_check_state_machine_passes_the_reference_and_records_evidence():
    from course import checks

    before = len(checks.recorded)
    tcpstates_check.check_state_machine(step)
    ev = checks.recorded[before:]
    assert ev and ev[-1]["check"] == "tcp state machine vs kernel"
    assert all(r["kernel"] == r["yours"] for r in ev[-1]["steps"])


def test_check_state_machine_fails_fin_wait1_straight_to_time_wait():
    wrong = with_change("FIN_WAIT1", "recv ACK of FIN", "TIME_WAIT")
    with pytest.raises(YourCodeError, match=r"client closes first.*kernel shows the client in FIN_WAIT2.*says 'TIME_WAIT'"):
        tcpstates_check.check_state_machine(wrong, ["client closes first"])


def test_check_state_machine_fails_a_passive_close_that_skips_last_ack():
    wrong = with_change("CLOSE_WAIT", "close/send FIN", "CLOSE")
    with pytest.raises(YourCodeError, match=r"client closes first.*server.*next_state\('CLOSE', 'recv ACK of FIN'\) raised ValueError"):
        tcpstates_check.check_state_machine(wrong, ["client closes first"])
    with pytest.raises(YourCodeError, match=r"server half-closes first.*kernel shows the client in LAST_ACK.*says 'CLOSE'"):
        tcpstates_check.check_state_machine(wrong, ["server half-closes first"])


def test_check_state_machine_reports_a_raise_on_a_real_transition():
    wrong = with_change("SYN_SENT", "recv RST", None)
    with pytest.raises(YourCodeError, match=r"connection refused.*raised ValueError"):
        tcpstates_check.check_state_machine(wrong, ["connection refused"])


def test_check_state_machine_fails_fast_on_a_blank_machine():
    def blank(state, event):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        tcpstates_check.check_state_machine(blank)


def test_check_transitions_wants_value_error_for_impossible_events():
    def permissive(state, event):
        try:
            return step(state, event)
        except ValueError:
            return state

    with pytest.raises(YourCodeError, match="should raise ValueError"):
        tcpstates_check.check_transitions(permissive)
    tcpstates_check.check_transitions(step)


def test_check_transitions_wants_the_rfc_answer_to_a_resent_fin():
    strict = with_change("TIME_WAIT", "recv FIN", None)
    with pytest.raises(YourCodeError, match=r"next_state\('TIME_WAIT', 'recv FIN'\) raised ValueError.*should return 'TIME_WAIT'.*resent"):
        tcpstates_check.check_transitions(strict)


def test_connection_refused_keeps_its_port_bound_while_it_connects():
    # the refused scenario's port stays bound (never listening) until the connect is refused, so
    # no other process can start listening on it in between
    obs = connection_life.observe("connection refused")
    assert [(o.endpoint, o.observed) for o in obs] == [("client", "CLOSE")]


def test_old_names_still_work():
    # notebooks of earlier releases call tcpstates.watch and tcpstates.check_*: they are forwarded
    assert tcpstates.watch is connection_life.watch and tcpstates.SCENARIOS is connection_life.SCENARIOS
    assert tcpstates.check_state_machine is tcpstates_check.check_state_machine
    assert tcpstates.check_transitions is tcpstates_check.check_transitions
    with pytest.raises(AttributeError):
        tcpstates.no_such_name  # noqa: B018


def test_the_table_imports_nothing_of_the_course():
    import subprocess
    import sys

    code = "import sys, course.tcpstates; print(sorted(m for m in sys.modules if m.startswith('course')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "['course', 'course.errors', 'course.tcpstates']"
