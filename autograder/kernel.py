"""A Jupyter kernel in a sandbox, driven from outside (stage: "execute").

The trusted side (this module, in the grader's process) never runs learner code: it starts
`python -m ipykernel_launcher` inside bwrap (see `sandbox`), talks to it over ZeroMQ `ipc`
sockets, sends one cell at a time, and collects that cell's outputs with a byte budget. It enforces
the per-cell timeout (interrupt, then kill when the interrupt is ignored), the wall-clock limit of
the whole submission and the output limit, and notices a kernel that died: `run_cell` pumps the
messages and asks `autograder.policy` (pure functions of plain numbers) what to do. Killing the sandbox
kills every process started in it (bwrap's PID namespace).
"""
from __future__ import annotations

import ctypes
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import zmq
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from autograder import policy
from autograder import sandbox as sb
from autograder.cgroup import SandboxGroup
from autograder.policy import FLOOD_BYTES, INTERRUPT_GRACE, MEMORY_GROWTH, MEMORY_HELD_SHARE  # noqa: F401 (their old home)
from autograder.cells import EVIDENCE_MIME, evidence_in  # noqa: F401 (EVIDENCE_MIME: its old name)

_LIBC = ctypes.CDLL(None, use_errno=True)


class KernelGone(Exception):
    """The kernel died or was killed; `reason` says why, `limit` names the limit it hit (or "")."""

    def __init__(self, reason: str, limit: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.limit = limit


@dataclass
class CellRun:
    outputs: list = field(default_factory=list)  # nbformat outputs, capped
    error: str = ""  # "ename: evalue" of the cell's error, if any
    status: str = ""  # the kernel's execute_reply status ("ok", "error", "aborted"), or "timeout"
    seconds: float = 0.0
    truncated: bool = False
    evidence: list = field(default_factory=list)


# The sandbox's processes, seen from outside: bwrap's PID namespace does not hide them from the
# grader's /proc.
def rss(pid: int) -> int:
    """Resident bytes of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def descendants(root: int) -> dict[int, int]:
    """`root` and every process below it -> its number of threads."""
    children: dict[int, list[int]] = {}
    threads: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
                fields = stat[stat.rindex(b")") + 2:].split()  # fields 3.. of proc(5)
                ppid, count = int(fields[1]), int(fields[17])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry.name))
            threads[int(entry.name)] = count
    out: dict[int, int] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid not in out and pid in threads:
            out[pid] = threads[pid]
            todo += children.get(pid, [])
    return out


def tree_usage(root: int) -> tuple[int, int]:
    """(resident bytes, tasks: processes and their threads) of process `root` and all below it."""
    tree = descendants(root)
    return sum(rss(pid) for pid in tree), sum(tree.values())


def tree_rss(root: int) -> int:
    """Resident bytes of process `root` and all its descendants."""
    return tree_usage(root)[0]


_signal_reason = policy.signal_reason  # the name it had here


class SandboxedKernel:
    """One kernel for one submission. Use as a context manager; leaving it kills the sandbox."""

    def __init__(self, run_dir: Path, work: Path, limits: sb.Limits, slot: int = 0, sandboxed: bool = True,
                 wall: float = 600.0):
        self.run_dir = Path(run_dir)
        self.work = Path(work)
        self.limits = limits
        self.slot = slot
        self.sandboxed = sandboxed
        self.proc: subprocess.Popen | None = None
        self.kc: BlockingKernelClient | None = None
        self.created = time.monotonic()
        self.deadline = self.created + wall
        self.wall = wall
        self.received = 0  # bytes of output read from this kernel
        self.dead: KernelGone | None = None
        self.group: SandboxGroup | None = None
        self.kernel_pid: int | None = None
        self.context: zmq.Context | None = None
        self.monitors: list = []  # sockets reporting when the kernel's connections drop
        self._uid_lock = None

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> "SandboxedKernel":
        conn_dir = self.run_dir / "c"
        conn_dir.mkdir(parents=True, exist_ok=True)
        if self.sandboxed and os.geteuid() == 0:
            # a uid no other sandbox on this machine uses right now (another grader's included):
            # the process limit counts per uid, so a fork bomb starves only its own sandbox
            self.slot = self._claim_uid() - sb.BASE_UID
        uid = sb.BASE_UID + self.slot
        if self.sandboxed and os.geteuid() == 0:
            os.chown(conn_dir, uid, uid)
            for p in [self.work, *self.work.rglob("*")]:
                os.chown(p, uid, uid)
        conn_file = conn_dir / "k.json"
        write_connection_file(str(conn_file), ip=str(conn_dir / "k"), key=secrets.token_hex(16).encode(),
                              transport="ipc")
        os.chmod(conn_file, 0o644)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", str(conn_file), "--HistoryManager.enabled=False",
                "--IPKernelApp.quiet=True"]
        log = open(self.run_dir / "kernel.log", "wb")
        if self.sandboxed:
            cmd = sb.command(argv, work=self.work, conn_dir=conn_dir, run_dir=self.run_dir, limits=self.limits,
                             slot=self.slot)
            env = None
            cwd = None
        else:
            cmd = sb.plain_command(argv, limits=self.limits)
            env = dict(os.environ, **{k: v for k, v in sb.kernel_env(os.getuid()).items()
                                      if k in ("NBGRADER_EXECUTION", "PYTHONDONTWRITEBYTECODE", "MPLBACKEND", "PYTHONPATH")})
            cwd = str(self.work)
        self.group = SandboxGroup(self.limits.memory, self.limits.processes) if self.sandboxed else None
        group = self.group if self.group is not None and self.group.active else None
        priority = self.limits.priority if os.geteuid() == 0 else 0

        grader = os.getpid()

        def enter() -> None:  # in the child, before exec: die with the grader, join the cgroup, priority
            _LIBC.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: a killed grader leaves no sandbox
            if os.getppid() != grader:  # the grader died between fork and prctl: nobody will kill us
                os._exit(1)
            if group is not None:
                group.enter()
            if priority:
                try:
                    os.setpriority(os.PRIO_PROCESS, 0, priority)
                except OSError:
                    pass
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env, cwd=cwd, preexec_fn=enter)
        log.close()
        # The grader's own ZeroMQ context: a message larger than the output limit is refused by the
        # socket from its header (the connection is dropped, and the monitors below notice), so a
        # flood never has to be received, let alone held in the grader's memory.
        self.context = zmq.Context()
        self.context.setsockopt(zmq.MAXMSGSIZE, self.limits.output + 1024**2)
        kc = BlockingKernelClient(connection_file=str(conn_file), context=self.context)
        kc.load_connection_file()
        kc.start_channels()
        self.kc = kc
        self.monitors = [ch.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
                         for ch in (kc.iopub_channel, kc.shell_channel)]
        until = time.monotonic() + min(self.limits.startup, self.remaining())
        while True:
            self._check_alive()
            try:
                kc.wait_for_ready(timeout=min(2.0, max(0.1, until - time.monotonic())))
                break
            except RuntimeError as exc:  # wait_for_ready raises RuntimeError on timeout
                if time.monotonic() >= until:
                    self.kill()
                    raise KernelGone(f"the kernel did not start within {self.limits.startup:.0f} s", "startup") from exc
        # drain the startup chatter
        while True:
            try:
                kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                break
        # the kernel's own process (the largest in the sandbox), to watch its memory cell by cell
        self.kernel_pid = max(descendants(self.proc.pid), key=rss, default=None)
        return self

    def _claim_uid(self) -> int:
        import fcntl

        folder = Path(tempfile.gettempdir()) / ".autograder-uids"
        folder.mkdir(mode=0o700, exist_ok=True)
        for k in range(sb.UID_COUNT):
            n = (self.slot + k) % sb.UID_COUNT
            f = open(folder / f"{sb.BASE_UID + n}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            self._uid_lock = f
            return sb.BASE_UID + n
        raise KernelGone(f"all {sb.UID_COUNT} sandbox uids are in use on this machine", "startup")

    def set_wall(self, wall: float) -> None:
        """Change the wall-clock limit (counted from the kernel's creation)."""
        self.wall = wall
        self.deadline = self.created + wall

    def reset_clock(self, wall: float) -> None:
        """A kernel started ahead of need: its wall clock starts now, with its first cell."""
        self.created = time.monotonic()
        self.set_wall(wall)

    def limits_hit(self) -> list[str]:
        """Limits the sandbox ran into that no cell need have reported: the task limit (a fork
        bomb, or threads that could not start) and the group's memory limit. Asked before the
        sandbox is killed."""
        hit = []
        if self.group is not None and self.group.active:
            if self.group.hit_processes():
                hit.append("processes")
            if self.group.hit_memory():
                hit.append("memory")
        elif self.sandboxed and self.alive():
            # no cgroup: RLIMIT_NPROC counts the tasks of the kernel's uid. As root that uid is the
            # sandbox's own, so its tasks are those of its tree. Otherwise it is this user's, whose
            # other processes count too: only a tree that alone reaches the limit is sure to have hit it.
            if tree_usage(self.proc.pid)[1] >= self.limits.processes - 2:
                hit.append("processes")
        return hit

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _check_alive(self) -> None:
        if self.dead:
            raise self.dead
        if self.proc is not None and self.proc.poll() is not None:
            gone = policy.kernel_died(self.proc.returncode, self.group is not None and self.group.hit_memory())
            self.dead = KernelGone(gone.reason, gone.limit)
            self.close_client()
            raise self.dead

    def kill(self, reason: str = "", limit: str = "") -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if reason and not self.dead:
            self.dead = KernelGone(reason, limit)
        self.close_client()
        if self.group is not None:
            self.group.remove()
        if self._uid_lock is not None:  # the sandbox is dead: its uid is free again
            self._uid_lock.close()
            self._uid_lock = None

    def close_client(self) -> None:
        for monitor in self.monitors:
            monitor.close(linger=0)
        self.monitors = []
        if self.kc is not None:
            try:
                self.kc.stop_channels()
            except Exception:
                pass
            self.kc = None
        if self.context is not None:
            self.context.destroy(linger=0)
            self.context = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()

    # -- running cells -----------------------------------------------------------------------
    def interrupt(self) -> None:
        if self.kc is None:
            return
        msg = self.kc.session.msg("interrupt_request", {})
        self.kc.control_channel.send(msg)

    def _obey(self, decision: policy.Decision) -> None:
        """Carry out a decision of the kill policy: kill the sandbox and raise KernelGone."""
        if decision.action is policy.Action.KILL:
            self.kill(decision.reason, decision.limit)
            raise self.dead

    def run_cell(self, source: str, timeout) -> CellRun:
        """Run one cell; raise KernelGone when the kernel died, was killed at a limit, or ignored
        an interrupt after the cell's timeout (the rules: `autograder.policy`). `timeout`: seconds,
        or a function giving them, asked again while the cell runs (it can change once the
        solution's times are known)."""
        timeout_now = timeout if callable(timeout) else (lambda: timeout)
        self._check_alive()
        self._obey(policy.before_cell(self.remaining(), self.wall))
        cell = _Cell(self.kc, rss(self.kernel_pid) if self.kernel_pid else 0, self.received, source)
        poller = zmq.Poller()
        poller.register(cell.iopub, zmq.POLLIN)
        poller.register(cell.shell, zmq.POLLIN)
        for monitor in self.monitors:
            poller.register(monitor, zmq.POLLIN)
        while True:
            now = time.monotonic()
            decision = policy.during_cell(
                now, start=cell.start, deadline=self.deadline, wall=self.wall,
                timeout=timeout_now() if cell.reply is None else 0.0, replied_at=cell.reply_at, idle=cell.idle,
                interrupted_at=cell.interrupted_at, cell_output=self.received - cell.received_before,
                output_limit=self.limits.output)
            if decision.action is policy.Action.DONE:
                break
            self._obey(decision)
            if decision.action is policy.Action.INTERRUPT:
                self.interrupt()
                cell.interrupted_at = now
                cell.run.status = "timeout"
            self._check_alive()
            # wait for either socket (at most 50 ms, so that limits and a dead kernel are noticed)
            ready = dict(poller.poll(50))
            if any(monitor in ready for monitor in self.monitors):
                try:  # a dying kernel drops its connections too: give it a moment to be seen dead
                    self.proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    pass
                self._check_alive()
                self._obey(policy.connection_dropped(self.limits.output))
            if cell.iopub in ready and self._read_output(cell):
                continue  # evidence, or a message that is no output: the reply is read next round
            if cell.reply is None and cell.shell in ready:
                cell.read_reply()
        return self._finish(cell, timeout_now)

    def _read_output(self, cell: "_Cell") -> bool:
        """Read one message from iopub; True when run_cell skips the shell channel this round."""
        try:
            msg = cell.kc.get_iopub_msg(timeout=0)
        except queue.Empty:
            return False
        size = _size(msg)
        self.received += size
        self._obey(policy.output_received(self.received, self.limits.output))
        if msg.get("parent_header", {}).get("msg_id") != cell.msg_id:
            return False
        mtype = msg["msg_type"]
        content = msg["content"]
        if mtype == "status" and content.get("execution_state") == "idle":
            cell.idle = True
        elif mtype in ("stream", "display_data", "execute_result", "error", "update_display_data"):
            out = _to_output(mtype, content)
            return out is None or cell.keep(mtype, content, out, size, self.limits.cell_output)
        return False

    def _finish(self, cell: "_Cell", timeout_now) -> CellRun:
        run = cell.run
        status = cell.reply["content"].get("status", "")
        if run.status != "timeout":
            run.status = status
        if status == "error" and not run.error:
            c = cell.reply["content"]
            run.error = f"{c.get('ename', '')}: {c.get('evalue', '')}"
        if run.status == "timeout":
            run.error = f"TimeoutError: the cell ran longer than {timeout_now():.0f} s and was interrupted"
        run.seconds = time.monotonic() - cell.start
        if policy.needs_memory_check(run.error, run.status) and self.proc is not None:
            # a cell that ran out of memory, or was interrupted while allocating on a loaded machine
            held = tree_rss(self.proc.pid)
            grown = (rss(self.kernel_pid) - cell.rss_before) if self.kernel_pid else 0
            self._obey(policy.after_cell(error=run.error, status=run.status, held=held, grown=grown,
                                         memory_limit=self.limits.memory))
        return run


class _Cell:
    """One cell in flight: what run_cell has received for it so far."""

    def __init__(self, kc: BlockingKernelClient, rss_before: int, received_before: int, source: str):
        self.kc = kc
        self.rss_before = rss_before
        self.received_before = received_before
        self.start = time.monotonic()
        self.msg_id = kc.execute(source, silent=False, store_history=True, allow_stdin=False, stop_on_error=False)
        self.iopub, self.shell = kc.iopub_channel.socket, kc.shell_channel.socket
        self.run = CellRun()
        self.kept = 0  # bytes of output kept in run.outputs
        self.reply = None
        self.reply_at: float | None = None
        self.idle = False
        self.interrupted_at: float | None = None

    def keep(self, mtype: str, content: dict, out: dict, size: int, cell_output: int) -> bool:
        """An output of this cell: evidence (True), or an output kept up to `cell_output` bytes."""
        run = self.run
        evidence = evidence_in(out)
        if evidence is not None:
            run.evidence.append(evidence)
            if len(json.dumps(run.evidence)) > cell_output * 4:
                run.evidence = run.evidence[:1] + [{"check": "(evidence truncated)"}]
            return True
        if mtype == "error" and not run.error:
            run.error = f"{content.get('ename', '')}: {content.get('evalue', '')}"[:2000]
        if self.kept + size <= cell_output:
            run.outputs.append(out)
            self.kept += size
        elif not run.truncated:
            run.truncated = True
            run.outputs.append({"output_type": "stream", "name": "stderr",
                                "text": f"[grader: output of this cell cut at {cell_output} bytes]\n"})
        return False

    def read_reply(self) -> None:
        try:
            while True:
                r = self.kc.get_shell_msg(timeout=0)
                if r.get("parent_header", {}).get("msg_id") == self.msg_id:
                    self.reply = r
                    self.reply_at = time.monotonic()
                    break
        except queue.Empty:
            pass


def _size(msg) -> int:
    try:
        return len(json.dumps(msg.get("content", {}), default=str))
    except Exception:
        return 1024


def _to_output(mtype: str, content: dict) -> dict | None:
    if mtype == "stream":
        return {"output_type": "stream", "name": content.get("name", "stdout"), "text": str(content.get("text", ""))}
    if mtype in ("display_data", "update_display_data"):
        return {"output_type": "display_data", "data": content.get("data", {}), "metadata": content.get("metadata", {})}
    if mtype == "execute_result":
        return {"output_type": "execute_result", "data": content.get("data", {}), "metadata": content.get("metadata", {}),
                "execution_count": content.get("execution_count")}
    if mtype == "error":
        return {"output_type": "error", "ename": str(content.get("ename", "")), "evalue": str(content.get("evalue", "")),
                "traceback": [str(t) for t in content.get("traceback", [])][:200]}
    return None


def new_msg_id() -> str:
    return uuid.uuid4().hex
