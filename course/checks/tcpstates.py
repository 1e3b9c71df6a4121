"""The checks of assignment 05's next_state: the learner's TCP state machine against the kernel and
against the reference table of `course.tcpstates`.

- `check_state_machine`: runs connection lives on real loopback sockets (`course.connection_life`)
  and, after each step, compares the state the learner's next_state predicts for each endpoint
  with the state the kernel shows.
- `check_transitions`: every (state, event) pair, and two unknown names, against the table: the
  same next state where it has one, ValueError where it has none.
"""
from __future__ import annotations

from typing import Callable, Iterable

from course.checks import check_calls, record_evidence
from course.checks.runner import call_with_deadline, learner_errors
from course.connection_life import SCENARIOS, Observation, observe
from course.errors import YourCodeError
from course.tcpstates import EVENTS, STATES, step

__all__ = [
    "check_state_machine",
    "TRANSITION_CASES",
    "TRANSITIONS_HINT",
    "check_transitions",
]


def check_state_machine(next_state: Callable[[str, str], str], scenarios: Iterable[str] = tuple(SCENARIOS)) -> None:
    """Run each scenario on real sockets and, after each step, compare the state the learner's
    `next_state` predicts for each endpoint with the state the kernel shows. Records evidence."""
    rows: list[dict] = []
    predicted: dict[tuple[str, str], str] = {}

    def compare(obs: Observation) -> None:
        key = (obs.scenario, obs.endpoint)
        state = predicted.get(key, "CLOSE")
        for event in obs.events:
            before = state
            with learner_errors(
                f"in scenario {obs.scenario!r}, at {obs.step}, the {obs.endpoint}'s kernel socket went through "
                f"{list(obs.events)}; your machine had it in {before} and next_state({before!r}, {event!r})",
                f"check the transition that led to {before}",
            ):
                state = call_with_deadline(next_state, before, event, timeout=1.0, name="next_state")
        predicted[key] = state
        rows.append({"scenario": obs.scenario, "step": obs.step, "endpoint": obs.endpoint, "events": list(obs.events), "kernel": obs.observed, "yours": state})
        if state != obs.observed:
            raise YourCodeError(
                f"in scenario {obs.scenario!r}, after {obs.step} the kernel shows the {obs.endpoint} in "
                f"{obs.observed}, but your machine, fed {list(obs.events)}, says {state!r}; check the transitions out of "
                f"the {obs.endpoint}'s earlier state"
            )

    try:
        for name in scenarios:
            observe(name, compare)
    finally:
        record_evidence("tcp state machine vs kernel", steps=rows)


# every (state, event) pair, then two names the machine does not know
TRANSITION_CASES = [(s, e) for s in STATES for e in EVENTS] + [("ESTABLISHED", "recv SYNACK"), ("OPEN", "recv FIN")]
TRANSITIONS_HINT = (
    "compare with the RFC 9293 diagram above: the side that closes first goes FIN_WAIT1 -> FIN_WAIT2 -> TIME_WAIT, "
    "the other CLOSE_WAIT -> LAST_ACK -> CLOSE; a FIN resent by the peer keeps CLOSE_WAIT, CLOSING, LAST_ACK and "
    "TIME_WAIT where they are (RFC 9293 3.10.7.4), and 'recv FIN+ACK' happens only in FIN_WAIT1"
)


def check_transitions(next_state: Callable[[str, str], str]) -> None:
    """Every (state, event) pair against the reference table: the same next state where the table
    has one, ValueError where it has none (and for unknown names)."""
    check_calls(next_state, step, TRANSITION_CASES, name="next_state", hint=TRANSITIONS_HINT)
