"""Assignment 05: classic wrong answers lose points (the notebook's checks catch them)."""
import pytest

from notebook_cases import assert_loses_points

A = "05-connection-life"

# Right up to the step each segment takes in the sender's sequence numbers; the bugs are there.
NUMBER_SEGMENTS_HEADER = '''
def number_segments(conversation, client_isn, server_isn):
    next_seq = {"client": client_isn, "server": server_isn}
    numbers = []
    for sender, flags, length in conversation:
        if sender not in next_seq:
            raise ValueError(sender)
        other = "server" if sender == "client" else "client"
        seq = next_seq[sender]
        numbers.append((seq, next_seq[other] if "ACK" in flags else 0))
'''

SEED_003_PLUS_ONE = NUMBER_SEGMENTS_HEADER + '''\
        # seed 003's "Ack = Seq + bytes + 1": data acknowledged one too far
        step = length + 1 if (length or "SYN" in flags or "FIN" in flags) else 0
        next_seq[sender] = (seq + step) % 2**32
    return numbers
'''

SYN_TAKES_NO_NUMBER = NUMBER_SEGMENTS_HEADER + '''\
        # forgets that a SYN takes one sequence number
        next_seq[sender] = (seq + length + ("FIN" in flags)) % 2**32
    return numbers
'''

MACHINE = '''
from course.tcpstates import step as _reference

def next_state(state, event):
    if (state, event) == {wrong_pair!r}:
        return {wrong_state!r}
    return _reference(state, event)
'''

EVERY_ACK_IS_HANDSHAKE_3 = '''
from course.capture import label_segments as _reference

def label_segments(segments):
    # calls every pure ACK "handshake 3" and forgets the teardown's ACK steps
    return ["handshake 3: ACK" if label in ("ACK", "teardown 2: ACK", "teardown 4: ACK") else label
            for label in _reference(segments)]
'''


@pytest.mark.notebooks
@pytest.mark.parametrize(
    "solution_id, source, failing",
    [
        ("number_segments", SEED_003_PLUS_ONE, ["number_segments_seed000", "number_segments_hidden"]),
        ("number_segments", SYN_TAKES_NO_NUMBER, ["number_segments_seed000", "number_segments_hidden"]),
        (
            "tcp_state_machine",
            MACHINE.format(wrong_pair=("FIN_WAIT1", "recv ACK of FIN"), wrong_state="TIME_WAIT"),
            ["state_machine_vs_kernel", "state_machine_hidden"],
        ),
        (
            "tcp_state_machine",
            MACHINE.format(wrong_pair=("CLOSE_WAIT", "close/send FIN"), wrong_state="CLOSE"),
            ["state_machine_vs_kernel", "state_machine_hidden"],
        ),
        ("label_segments", EVERY_ACK_IS_HANDSHAKE_3, ["label_recorded_capture", "label_fresh_and_odd_captures"]),
    ],
    ids=["ack-plus-one-seed-003", "syn-takes-no-number", "fin-wait1-straight-to-time-wait", "passive-close-skips-last-ack", "every-ack-is-handshake-3"],
)
def test_wrong_implementation_loses_points(solution_id, source, failing):
    assert_loses_points(A, solution_id, source, failing)
