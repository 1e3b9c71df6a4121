"""course.seqack: RFC 9293's sequence arithmetic, seed 000's numbers, and the check that catches
seed 003's '+1'."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course import seqack
from course.checks import seqack as seqack_check
from course.errors import YourCodeError
from course.seqack import MOD, SEED_000, ack_for, number_conversation, sequence_space


def test_seed_000_numbers():
    assert number_conversation(SEED_000, 1000, 8000) == [
        (1000, 0), (8000, 1001), (1001, 8001), (1001, 8001), (8001, 1021),
        (1021, 8011), (1021, 8011), (8011, 1022), (8011, 1022), (1022, 8012),
    ]  # fmt: skip


def test_syn_and_fin_take_one_number_data_takes_its_length():
    assert sequence_space("SYN", 0) == 1
    assert sequence_space("FIN,ACK", 0) == 1
    assert sequence_space("PSH,ACK", 100) == 100
    assert sequence_space("ACK", 0) == 0
    assert sequence_space("FIN,PSH,ACK", 5) == 6


def test_seed_003_example_is_acknowledged_with_1300_not_1301():
    assert ack_for(1200, "PSH,ACK", 100) == 1300


def test_numbers_wrap_at_32_bits():
    conv = [("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0)]
    assert number_conversation(conv, MOD - 1, 5) == [(MOD - 1, 0), (5, 0), (0, 6)]


@pytest.mark.parametrize("flags, length", [("SYN,BOGUS", 0), ("ACK", -1)])
def test_bad_flags_or_length_raise_value_error(flags, length):
    with pytest.raises(ValueError):
        sequence_space(flags, length)


def test_bad_sender_raises_value_error():
    with pytest.raises(ValueError, match="'client' or 'server'"):
        number_conversation([("eve", "SYN", 0)], 1, 2)


def test_relative_numbers_start_at_zero_as_in_wireshark():
    numbers = number_conversation(SEED_000, 1000, 8000)
    rows = [(s, q, a, f) for (s, f, _), (q, a) in zip(SEED_000, numbers)]
    rel = seqack.relative(rows)
    assert rel[:3] == [(0, 0), (0, 1), (1, 1)]
    assert rel[4] == (1, 21)


@given(st.integers(0, 10_000), st.integers(0, MOD - 1), st.integers(0, MOD - 1))
@settings(max_examples=100, deadline=None)
def test_every_ack_equals_the_bytes_and_flags_the_other_side_sent(seed, c_isn, s_isn):
    conv = seqack.random_conversation(random.Random(seed))
    numbers = number_conversation(conv, c_isn, s_isn)
    sent = {"client": 0, "server": 0}
    isn = {"client": c_isn, "server": s_isn}
    for (sender, flags, length), (seq, ack) in zip(conv, numbers):
        other = "server" if sender == "client" else "client"
        assert seq == (isn[sender] + sent[sender]) % MOD
        if "ACK" in flags:
            assert ack == (isn[other] + sent[other]) % MOD
        sent[sender] += sequence_space(flags, length)


def learner_plus_one(conversation, client_isn, server_isn):  # seed 003's "Ack = Seq + bytes + 1"
    nxt = {"client": client_isn, "server": server_isn}
    out = []
    for sender, flags, length in conversation:
        other = "server" if sender == "client" else "client"
        seq = nxt[sender]
        out.append((seq, nxt[other] if "ACK" in flags else 0))
        nxt[sender] = (seq + length + (1 if length or "SYN" in flags or "FIN" in flags else 0)) % MOD
    return out


def learner_syn_free(conversation, client_isn, server_isn):  # forgets that SYN takes a number
    nxt = {"client": client_isn, "server": server_isn}
    out = []
    for sender, flags, length in conversation:
        other = "server" if sender == "client" else "client"
        seq = nxt[sender]
        out.append((seq, nxt[other] if "ACK" in flags else 0))
        nxt[sender] = (seq + length + ("FIN" in flags)) % MOD
    return out


def test_check_passes_the_reference_visible_and_hidden():
    seqack_check.check_number_segments(number_conversation)
    seqack_check.check_number_segments(number_conversation, hidden=True)


def test_check_fails_seed_003_plus_one_with_a_hint_naming_it():
    with pytest.raises(YourCodeError, match=r"segment 5 \(server PSH,ACK len=10\).*\(8001, 1021\).*seed 003"):
        seqack_check.check_number_segments(learner_plus_one)


def test_check_fails_a_syn_that_takes_no_number():
    with pytest.raises(YourCodeError, match=r"segment 2 \(server SYN,ACK len=0\).*\(8000, 1001\).*one too low: a SYN or a FIN"):
        seqack_check.check_number_segments(learner_syn_free)


def test_hidden_check_wants_value_error_for_a_bad_sender():
    def lenient(conversation, a, b):
        return number_conversation([s for s in conversation if s[0] in ("client", "server")], a, b) + [(0, 0)] * sum(s[0] not in ("client", "server") for s in conversation)

    with pytest.raises(YourCodeError, match="should raise ValueError"):
        seqack_check.check_number_segments(lenient, hidden=True)


def test_check_is_fast_on_a_blank_function():
    def blank(*args):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        seqack_check.check_number_segments(blank, hidden=True)


def test_table_lines_show_the_direction_and_numbers():
    lines = seqack.table(SEED_000, number_conversation(SEED_000, 1000, 8000))
    assert lines[1].split() == ["2", "client", "<-", "server", "SYN,ACK", "seq=8000", "ack=1001", "len=0"]


def test_old_name_of_the_check_still_works():
    # notebooks of earlier releases call seqack.check_number_segments: it forwards to course.checks
    assert seqack.check_number_segments is seqack_check.check_number_segments
    with pytest.raises(AttributeError):
        seqack.no_such_name  # noqa: B018


def test_the_arithmetic_imports_nothing_of_the_course():
    import subprocess
    import sys

    code = "import sys, course.seqack; print(sorted(m for m in sys.modules if m.startswith('course')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "['course', 'course.errors', 'course.seqack']"
