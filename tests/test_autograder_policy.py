"""The grader's kill policy (autograder.policy), rule by rule, with plain numbers: no kernel, no
sandbox, no clock."""
from __future__ import annotations

import ast

import signal
from pathlib import Path

import pytest

from autograder import policy as p
from autograder.policy import Action

MB = 1024**2
GB = 1024**3
OUT = 8 * MB


def during(now, *, start=0.0, deadline=1000.0, wall=1000.0, timeout=10.0, replied_at=None, idle=False,
           interrupted_at=None, cell_output=0, output_limit=OUT):
    return p.during_cell(now, start=start, deadline=deadline, wall=wall, timeout=timeout, replied_at=replied_at,
                         idle=idle, interrupted_at=interrupted_at, cell_output=cell_output, output_limit=output_limit)


# -- before and during a cell --------------------------------------------------------------------
def test_before_cell_kills_when_the_wall_clock_is_used_up():
    assert p.before_cell(0.5, 60) == p.GO_ON
    for remaining in (0, -3):
        d = p.before_cell(remaining, 60)
        assert (d.action, d.limit) == (Action.KILL, "wall-clock")
        assert d.reason == "the submission ran longer than its wall-clock limit of 60 s"


def test_a_running_cell_goes_on():
    assert during(5.0) == p.GO_ON
    assert during(9.99, cell_output=5 * MB) == p.GO_ON  # a flood is judged at the timeout only


def test_the_cell_is_done_when_the_kernel_is_idle_or_a_second_after_the_reply():
    assert during(5.0, replied_at=4.9, idle=True) == p.DONE
    assert during(5.0, replied_at=4.5) == p.GO_ON  # the reply waits for "idle"...
    assert during(5.6, replied_at=4.5) == p.DONE  # ... at most REPLY_WAIT
    assert p.REPLY_WAIT == 1.0
    # a finished cell is done even past its timeout or the wall clock
    assert during(2000.0, replied_at=1999.0, idle=True, deadline=1000.0) == p.DONE


def test_wall_clock_deadline_kills():
    d = during(100.0, deadline=100.0, wall=90.0)
    assert (d.action, d.limit) == (Action.KILL, "wall-clock")
    assert "wall-clock limit of 90 s" in d.reason
    # before the cell's own timeout is looked at
    assert during(100.0, deadline=100.0, timeout=1.0).limit == "wall-clock"


def test_timeout_interrupts_a_cell():
    assert during(10.0, start=0.0, timeout=10.0) == p.INTERRUPT
    assert during(10.0, start=0.0, timeout=10.0, cell_output=p.FLOOD_BYTES) == p.INTERRUPT  # not more than
    assert during(10.0, start=0.0, timeout=10.0, interrupted_at=10.0) == p.GO_ON  # once
    assert during(10.0, start=0.0, timeout=10.0, replied_at=9.5) == p.GO_ON  # a reply came


def test_timeout_of_a_cell_that_sent_over_a_megabyte_kills_it_as_a_flood():
    d = during(10.0, timeout=10.0, cell_output=p.FLOOD_BYTES + 1)
    assert (d.action, d.limit) == (Action.KILL, "output")
    assert d.reason == "a cell sent 1.0 MB of output and ran out of time: an output flood (the limit is 8 MB)"
    assert p.FLOOD_BYTES == MB


def test_an_interrupt_ignored_for_the_grace_period_kills():
    g = p.INTERRUPT_GRACE
    assert g == 2.0
    assert during(10.0 + g, timeout=10.0, interrupted_at=10.0) == p.GO_ON  # exactly the grace: not yet
    d = during(10.0 + g + 0.01, timeout=10.0, interrupted_at=10.0)
    assert (d.action, d.limit) == (Action.KILL, "cell-timeout")
    assert d.reason == "a cell ran longer than 10 s and ignored the interrupt"
    assert during(20.0, timeout=10.0, interrupted_at=10.0, replied_at=11.0) == p.DONE  # it stopped: a second later


# -- events ----------------------------------------------------------------------------------------
def test_output_limit_kills():
    assert p.output_received(OUT, OUT) == p.GO_ON
    d = p.output_received(OUT + 1, OUT)
    assert (d.action, d.limit, d.reason) == (Action.KILL, "output", "the kernel sent more than 8 MB of output")


def test_a_dropped_connection_is_an_output_flood():
    d = p.connection_dropped(OUT)
    assert (d.action, d.limit) == (Action.KILL, "output")
    assert d.reason.endswith("refuses any message larger than the output limit of 8 MB (an output flood)")


@pytest.mark.parametrize("code,reason,limit", [
    (None, "the kernel stopped answering", "kernel-died"),
    (-signal.SIGXCPU, "the kernel used up its CPU time", "cpu"),
    (128 + signal.SIGXFSZ, "the kernel wrote a file larger than allowed", "file-size"),
    (-signal.SIGKILL, "the kernel was killed (SIGKILL)", "kernel-died"),
    (-signal.SIGSEGV, "the kernel crashed (SIGSEGV)", "kernel-died"),
    (-signal.SIGTERM, f"the kernel was killed by signal {int(signal.SIGTERM)}", "kernel-died"),
    (3, "the kernel exited with status 3", "kernel-died"),
    (0, "the kernel exited with status 0", "kernel-died"),
])
def test_a_dead_kernel_is_gone_with_the_reason_of_its_exit(code, reason, limit):
    assert p.kernel_died(code) == p.Decision(Action.GONE, reason, limit)


def test_a_dead_kernel_whose_group_hit_the_memory_limit_ran_out_of_memory():
    d = p.kernel_died(-signal.SIGKILL, memory_hit=True)
    assert (d.action, d.limit) == (Action.GONE, "memory")
    assert d.reason == "the sandbox ran out of memory (the kernel was killed (SIGKILL))"


# -- after a cell ----------------------------------------------------------------------------------
def after(error="", status="ok", held=0, grown=0, memory_limit=2 * GB):
    return p.after_cell(error=error, status=status, held=held, grown=grown, memory_limit=memory_limit)


def test_after_a_plain_cell_nothing_is_measured_or_stopped():
    assert not p.needs_memory_check("", "ok") and not p.needs_memory_check("ValueError: x", "error")
    assert p.needs_memory_check("MemoryError: ", "error") and p.needs_memory_check("", "timeout")
    assert after(held=2 * GB, grown=2 * GB) == p.GO_ON  # no MemoryError, no timeout: never stopped


def test_memory_held_after_a_memory_error_or_a_timeout_kills():
    assert p.MEMORY_HELD_SHARE == 0.5
    assert after(error="MemoryError: ", status="error", held=GB) == p.GO_ON  # half: not over it
    d = after(error="MemoryError: ", status="error", held=GB + 1)
    assert (d.action, d.limit) == (Action.KILL, "memory")
    assert d.reason == ("a cell ran out of memory (the memory limit is 2 GiB) and the kernel still held 1.0 GiB "
                        "afterwards, so later cells could not run; the kernel was stopped")
    d = after(error="TimeoutError: ...", status="timeout", held=int(1.5 * GB))
    assert d.limit == "memory" and d.reason.startswith("a cell was interrupted (the memory limit is 2 GiB)")


def test_a_timed_out_cell_that_grew_the_kernel_kills_and_a_plain_hang_does_not():
    assert p.MEMORY_GROWTH == 256 * MB
    assert after(status="timeout", grown=256 * MB) == p.GO_ON
    assert after(status="timeout", grown=-50 * MB) == p.GO_ON
    d = after(status="timeout", grown=400 * MB, held=500 * MB)
    assert (d.action, d.limit) == (Action.KILL, "memory")
    assert d.reason == ("a cell that ran out of time had grown the kernel by 400 MiB (more than 256 MiB: an "
                        "allocation without end, cut short; the memory limit is 2 GiB); the kernel was stopped")
    # growth counts only for a timeout: a MemoryError that released its memory goes on
    assert after(error="MemoryError: ", status="error", grown=400 * MB, held=100 * MB) == p.GO_ON


def test_the_kernel_module_keeps_the_policy_names():
    from autograder import kernel

    assert (kernel.INTERRUPT_GRACE, kernel.FLOOD_BYTES, kernel.MEMORY_GROWTH, kernel.MEMORY_HELD_SHARE) == (
        p.INTERRUPT_GRACE, p.FLOOD_BYTES, p.MEMORY_GROWTH, p.MEMORY_HELD_SHARE)


def test_one_evidence_mime_type():
    from autograder import execute, grade, kernel
    from course import checks

    assert execute.EVIDENCE_MIME is checks.EVIDENCE_MIME and kernel.EVIDENCE_MIME is checks.EVIDENCE_MIME
    assert grade.verify_mime() is checks.EVIDENCE_MIME
    for f in Path(kernel.__file__).parent.glob("*.py"):
        assert "vnd.sockets-course.evidence" not in f.read_text(), f"{f.name} defines the evidence MIME type again"
# -- the code's shape ----------------------------------------------------------------------------------
def test_no_grader_function_is_longer_than_80_lines():
    from autograder import kernel

    long = []
    for f in sorted(Path(kernel.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long.append(f"{f.name}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_the_stage_order_is_written_once():
    from autograder import cli, stages

    assert [s.__name__ for s in stages.STAGES] == [
        "start_gradebook", "collect_submissions", "replay_journal", "grade_submissions", "store_grades",
        "export_grades", "write_feedback", "print_summary"]
    assert "stages.autograde(" in Path(cli.__file__).read_text()


def test_a_journal_record_is_current_only_for_the_same_version_files_and_reference():
    from autograder import journal

    asked = []

    def digest():
        asked.append("digest")
        return "d"

    def ref():
        asked.append("ref")
        return "r"

    record = journal.close_record(journal.new_record("00-echo", "alice", "d"), "r")
    assert record["score"] == record["max_score"] == 0 and record["version"] == journal.VERSION
    assert journal.is_current(record, digest, ref) and asked == ["digest", "ref"]
    asked.clear()
    assert not journal.is_current(None, digest, ref) and asked == []  # nothing read without a record
    assert not journal.is_current({**record, "version": "0"}, digest, ref) and asked == []
    assert not journal.is_current({**record, "digest": "x"}, digest, ref) and asked == ["digest"]
    assert not journal.is_current({**record, "ref": "x"}, digest, ref)
