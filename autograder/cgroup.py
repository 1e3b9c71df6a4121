"""A control group per sandbox, when the grader may make one (root, cgroup v1 or v2 writable).

`prlimit` bounds each process; a submission that forks could still use (processes x memory). A
cgroup bounds the whole sandbox: total memory and number of tasks. Where no cgroup can be made (not
root, a read-only /sys/fs/cgroup), the grader goes on with the per-process limits only.
"""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def remove_stale(older_than: float = 600.0) -> int:
    """Remove the empty groups a killed grader left behind (a group is empty once its sandbox died;
    one younger than `older_than` seconds may belong to a grader that is just starting a kernel).
    Returns how many were removed."""
    removed = 0
    now = time.time()
    for parent in (ROOT, ROOT / "memory", ROOT / "pids"):
        try:
            entries = list(parent.glob("autograder-*"))
        except OSError:
            continue
        for d in entries:
            try:
                if now - d.stat().st_mtime > older_than and not (d / "cgroup.procs").read_text().strip():
                    d.rmdir()  # refused (EBUSY) while any process is in it
                    removed += 1
            except OSError:
                pass
    return removed


class SandboxGroup:
    def __init__(self, memory: int, tasks: int, root: Path | None = None):
        self.root = root or ROOT  # a test passes a fake cgroupfs
        self.memory = memory
        self.tasks = tasks
        self.dirs: list[Path] = []
        self.procs: list[str] = []  # cgroup.procs files a new process writes its pid into
        # cgroup v2 (unified) when the memory controller is there; otherwise v1 (or a hybrid
        # system, whose v2 hierarchy lacks the memory and pids controllers)
        try:
            self.v2 = "memory" in (self.root / "cgroup.controllers").read_text().split()
        except OSError:
            self.v2 = False
        name = f"autograder-{uuid.uuid4().hex[:12]}"
        try:
            if os.geteuid() != 0:
                return
            if self.v2:
                try:
                    (self.root / "cgroup.subtree_control").write_text("+memory +pids")
                except OSError:
                    pass
                d = self.root / name
                d.mkdir()
                self.dirs.append(d)
                (d / "memory.max").write_text(str(memory))
                (d / "memory.swap.max").write_text("0") if (d / "memory.swap.max").exists() else None
                (d / "pids.max").write_text(str(tasks))
                self.procs.append(str(d / "cgroup.procs"))
            elif (self.root / "memory").is_dir() and (self.root / "pids").is_dir():
                m, p = self.root / "memory" / name, self.root / "pids" / name
                m.mkdir()
                self.dirs.append(m)
                p.mkdir()
                self.dirs.append(p)
                (m / "memory.limit_in_bytes").write_text(str(memory))
                (p / "pids.max").write_text(str(tasks))
                self.procs += [str(m / "cgroup.procs"), str(p / "cgroup.procs")]
        except OSError:
            self.remove()
            self.procs = []

    @property
    def active(self) -> bool:
        return bool(self.procs)

    def enter(self) -> None:
        """Called in the child between fork and exec (Popen's preexec_fn): join the groups."""
        pid = str(os.getpid())
        for f in self.procs:
            fd = os.open(f, os.O_WRONLY)
            try:
                os.write(fd, pid.encode())
            finally:
                os.close(fd)

    def hit_memory(self) -> bool:
        try:
            if self.v2 and self.dirs:
                events = (self.dirs[0] / "memory.events").read_text()
                return any(line.split()[0] in ("oom", "oom_kill") and int(line.split()[1]) > 0
                           for line in events.splitlines() if line.strip())
            for d in self.dirs:
                if (d / "memory.failcnt").exists():
                    return int((d / "memory.failcnt").read_text().strip() or 0) > 0
        except (OSError, ValueError, IndexError):
            pass
        return False

    def hit_processes(self) -> bool:
        """A fork or thread start was refused at the group's task limit (pids.events "max")."""
        for d in self.dirs:
            events = d / "pids.events"
            try:
                if events.exists():
                    counts = dict(line.split() for line in events.read_text().splitlines() if line.strip())
                    return int(counts.get("max", 0)) > 0
            except (OSError, ValueError):
                pass
        return False

    def remove(self, wait: float = 5.0) -> None:
        """Remove the groups once the killed processes have left them (a moment after SIGKILL)."""
        deadline = time.monotonic() + wait
        left = list(reversed(self.dirs))
        while left:
            for d in list(left):
                try:
                    d.rmdir()
                    left.remove(d)
                except FileNotFoundError:
                    left.remove(d)
                except OSError:
                    pass
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.dirs = left
