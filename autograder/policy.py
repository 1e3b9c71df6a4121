"""When the grader stops a cell or its kernel (stage: "execute"): the kill policy, as pure functions.

`SandboxedKernel.run_cell` pumps the kernel's messages and asks these functions, with plain
numbers (seconds, bytes, exit codes), what to do; each returns a `Decision`. Nothing here touches a
process, a socket or the clock, so every rule is tested with numbers alone
(tests/test_autograder_policy.py). The rules, in the order run_cell asks them:

- `before_cell`: the submission's wall-clock time is used up -> kill ("wall-clock").
- `during_cell`, asked about every 50 ms while a cell runs:
  - the reply came and the kernel went idle, or the reply is a second old -> the cell is done;
  - the wall-clock deadline passed -> kill ("wall-clock");
  - the cell's timeout passed: when it sent more than `FLOOD_BYTES` of output -> kill as an output
    flood ("output"); else -> interrupt it (the cell's status becomes "timeout");
  - the interrupt is `INTERRUPT_GRACE` seconds old and no reply came -> kill ("cell-timeout").
- `kernel_died`: the kernel's process exited -> gone, with the reason read from its exit status
  ("cpu", "file-size", "memory" when its control group hit the memory limit, else "kernel-died").
- `connection_dropped`: ZeroMQ dropped the kernel's connection (a message larger than the output
  limit, refused from its header) -> kill ("output").
- `output_received`: the kernel sent more than the output limit in all -> kill ("output").
- `after_cell`, once the reply is in, for a cell that raised MemoryError or timed out:
  - the sandbox still holds over `MEMORY_HELD_SHARE` of its memory limit -> kill ("memory");
  - the cell timed out having grown the kernel by more than `MEMORY_GROWTH` -> kill ("memory").
"""
from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import Enum

INTERRUPT_GRACE = 2.0  # seconds a kernel has to stop a cell after the interrupt before it is killed
# After a MemoryError or a cell timeout, a sandbox that still holds more than this share of its
# memory limit is stopped: every later cell would fail to allocate (threads, sockets) and run into
# its timeout, so going on costs the sum of the timeouts and earns nothing.
MEMORY_HELD_SHARE = 0.5
# ... and so is one whose kernel grew by more than this during a cell that timed out: an allocation
# without end that the timeout cut short. Without this rule its fate would depend on how far it got
# before the timeout, that is on the machine's load (no cell of the course grows by this much).
MEMORY_GROWTH = 256 * 1024**2
# A cell that sent more output than this and ran out of time is an output flood: the sandbox is
# killed as at the output limit, instead of being interrupted, so that the outcome does not depend on
# how fast a loaded machine let the grader read (a flood can also keep the kernel from handling
# the interrupt). No cell of the course prints a megabyte.
FLOOD_BYTES = 1024**2
REPLY_WAIT = 1.0  # seconds a cell's reply waits for the kernel's "idle" before the cell counts as done


class Action(Enum):
    GO_ON = "go on"  # keep waiting for the cell
    DONE = "done"  # the cell is over
    INTERRUPT = "interrupt"  # the cell ran out of time: interrupt it and keep waiting
    KILL = "kill"  # kill the sandbox (`reason`, `limit`)
    GONE = "gone"  # the kernel is already dead (`reason`, `limit`)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""
    limit: str = ""  # the limit hit, as the journal names it ("output", "memory", ...)


GO_ON = Decision(Action.GO_ON)
DONE = Decision(Action.DONE)
INTERRUPT = Decision(Action.INTERRUPT)


def _mb(n: int) -> int:
    return n // 1024**2


def wall_clock(wall: float) -> Decision:
    return Decision(Action.KILL, f"the submission ran longer than its wall-clock limit of {wall:.0f} s", "wall-clock")


def before_cell(remaining: float, wall: float) -> Decision:
    """Before a cell is sent: `remaining` seconds of the submission's `wall`."""
    return wall_clock(wall) if remaining <= 0 else GO_ON


def during_cell(now: float, *, start: float, deadline: float, wall: float, timeout: float,
                replied_at: float | None, idle: bool, interrupted_at: float | None,
                cell_output: int, output_limit: int) -> Decision:
    """A running cell, at time `now` (seconds, one clock): sent at `start`, with `timeout` seconds;
    the submission must end by `deadline` (its limit is `wall` s); `replied_at`: when its reply came
    (None: not yet); `idle`: the kernel said it is idle after the cell; `interrupted_at`: when it
    was interrupted (None: not); `cell_output`: bytes of output the cell sent so far;
    `output_limit`: the kernel's output limit in bytes."""
    if replied_at is not None and (idle or now - replied_at > REPLY_WAIT):
        return DONE
    if now >= deadline:
        return wall_clock(wall)
    if interrupted_at is None and replied_at is None and now >= start + timeout:
        if cell_output > FLOOD_BYTES:
            return Decision(Action.KILL, f"a cell sent {cell_output / 1024**2:.1f} MB of output and ran out of time: "
                                         f"an output flood (the limit is {_mb(output_limit)} MB)", "output")
        return INTERRUPT
    if interrupted_at is not None and replied_at is None and now - interrupted_at > INTERRUPT_GRACE:
        return Decision(Action.KILL, f"a cell ran longer than {timeout:.0f} s and ignored the interrupt", "cell-timeout")
    return GO_ON


def kernel_died(returncode: int | None, memory_hit: bool = False) -> Decision:
    """The kernel's process ended with `returncode` (Popen's: negative for a signal; None: it no
    longer answers); `memory_hit`: its control group reached the memory limit."""
    reason, limit = signal_reason(returncode)
    if memory_hit:
        reason, limit = f"the sandbox ran out of memory ({reason})", "memory"
    return Decision(Action.GONE, reason, limit)


def signal_reason(code: int | None) -> tuple[str, str]:
    if code is None:
        return "the kernel stopped answering", "kernel-died"
    sig = code - 128 if code > 128 else (-code if code < 0 else 0)
    names = {signal.SIGXCPU: ("the kernel used up its CPU time", "cpu"),
             signal.SIGXFSZ: ("the kernel wrote a file larger than allowed", "file-size"),
             signal.SIGKILL: ("the kernel was killed (SIGKILL)", "kernel-died"),
             signal.SIGSEGV: ("the kernel crashed (SIGSEGV)", "kernel-died")}
    if sig in names:
        return names[sig]
    if sig:
        return f"the kernel was killed by signal {sig}", "kernel-died"
    return f"the kernel exited with status {code}", "kernel-died"


def connection_dropped(output_limit: int) -> Decision:
    """ZeroMQ dropped the kernel's connection (and the kernel is still alive)."""
    return Decision(Action.KILL, f"the kernel dropped its connection to the grader, which refuses any message larger "
                                 f"than the output limit of {_mb(output_limit)} MB (an output flood)", "output")


def output_received(received: int, output_limit: int) -> Decision:
    """`received`: bytes of output read from this kernel so far, all cells together."""
    if received > output_limit:
        return Decision(Action.KILL, f"the kernel sent more than {_mb(output_limit)} MB of output", "output")
    return GO_ON


def after_cell(*, error: str, status: str, held: int, grown: int, memory_limit: int) -> Decision:
    """A cell that is over: its `error` ("ename: evalue" or ""), its `status` ("timeout" when it
    ran out of time); `held`: bytes the sandbox's processes hold now; `grown`: bytes the kernel's
    own process grew during the cell; `memory_limit`: the sandbox's, in bytes."""
    out_of_memory = error.startswith("MemoryError")
    if not (out_of_memory or status == "timeout"):
        return GO_ON
    limit = f"{memory_limit / 1024**3:g} GiB"
    if held > MEMORY_HELD_SHARE * memory_limit:
        what = "ran out of memory" if out_of_memory else "was interrupted"
        return Decision(Action.KILL, f"a cell {what} (the memory limit is {limit}) and the kernel still held "
                                     f"{held / 1024**3:.1f} GiB afterwards, so later cells could not run; the kernel "
                                     f"was stopped", "memory")
    if status == "timeout" and grown > MEMORY_GROWTH:
        return Decision(Action.KILL, f"a cell that ran out of time had grown the kernel by {grown / 1024**2:.0f} MiB "
                                     f"(more than {MEMORY_GROWTH // 1024**2} MiB: an allocation without end, cut short; "
                                     f"the memory limit is {limit}); the kernel was stopped", "memory")
    return GO_ON


def needs_memory_check(error: str, status: str) -> bool:
    """Whether `after_cell` can stop anything (so whether measuring the memory is worth it)."""
    return error.startswith("MemoryError") or status == "timeout"
