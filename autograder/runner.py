"""Run one notebook top to bottom in a fresh sandboxed kernel (the grader's "execute" stage, for
the solution and for each submission alike), and keep kernels started ahead of need.

Each run gets a working copy of its own (the release's files besides the notebooks) and a kernel
that serves that run only; the kernel enforces the limits (`kernel`, `policy`). What the cells
sent, with their evidence, goes into a copy of the notebook (`NotebookRun.nb`).
"""
from __future__ import annotations

import copy
import os
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from autograder.cells import EVIDENCE_MIME
from autograder.kernel import CellRun, KernelGone, SandboxedKernel

if TYPE_CHECKING:
    from autograder.grade import Options


@dataclass
class NotebookRun:
    nb: nbformat.NotebookNode
    runs: dict[int, CellRun]  # cell index -> what happened
    stopped: KernelGone | None = None
    stopped_at: int | None = None  # index of the cell during which the kernel went away
    seconds: float = 0.0
    limits: list[str] = field(default_factory=list)  # limits the sandbox hit that no cell reported


def _copy_release_files(release_dir: Path | None, work: Path) -> None:
    if not release_dir or not release_dir.is_dir():
        return
    for p in release_dir.rglob("*"):
        rel = p.relative_to(release_dir)
        if p.is_symlink() or p.suffix == ".ipynb" or ".ipynb_checkpoints" in rel.parts:
            continue
        if p.is_dir():
            (work / rel).mkdir(parents=True, exist_ok=True)
        elif p.is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, work / rel)


@dataclass
class _Sandbox:
    """A working copy and its kernel (started or not)."""

    run_dir: Path
    kernel: SandboxedKernel


def _new_sandbox(options: Options, slot: int, release_dir: Path | None, runs_root: Path | None,
                 wall: float) -> _Sandbox:
    # a short path: the kernel's ipc sockets live in it, and a unix socket path has at most 107 bytes
    if runs_root is None or len(str(runs_root)) > 40:
        runs_root = None
    run_dir = Path(tempfile.mkdtemp(prefix="ag-", dir=runs_root))
    os.chmod(run_dir, 0o755)
    work = run_dir / "w"
    work.mkdir()
    try:
        _copy_release_files(release_dir, work)
        kernel = SandboxedKernel(run_dir, work, options.limits, slot=slot, sandboxed=options.sandboxed, wall=wall)
    except BaseException:
        _remove_run_dir(run_dir)
        raise
    return _Sandbox(run_dir, kernel)


def _discard(box: _Sandbox) -> None:
    try:
        box.kernel.kill()
    finally:
        _remove_run_dir(box.run_dir)


def _remove_run_dir(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
    _rm_owned_leftovers(run_dir)


class WarmKernels:
    """Sandboxed kernels started ahead of need. Starting one (the sandbox, Python, ipykernel) takes
    about 0.6 s of CPU; started while other submissions' cells run (they mostly wait on sockets and
    timers), it costs no wall-clock time. Each kernel is fresh and serves exactly one notebook run;
    `close()` kills the ones nobody took.

    `plan` lists the release folders of the runs to come, in the order the workers take them; up to
    `ahead` kernels are kept started for the head of that list.
    """

    def __init__(self, options: Options, plan: list[Path | None], ahead: int, slot: int):
        from concurrent.futures import ThreadPoolExecutor

        self.options = options
        self.ahead = ahead
        self.slot = slot
        self._plan = list(plan)  # runs whose kernel is not started yet
        self._ready: list[tuple[Path | None, object]] = []  # (release folder, Future of _Sandbox)
        self._lock = threading.Lock()
        self._closed = False
        # one thread starts them all, and lives until close(): a kernel dies with the thread that
        # started it (PR_SET_PDEATHSIG)
        self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-kernels")
        with self._lock:
            self._fill()

    def _fill(self) -> None:
        while not self._closed and self._plan and len(self._ready) < self.ahead:
            release_dir = self._plan.pop(0)
            self._ready.append((release_dir, self._starter.submit(self._start, release_dir)))

    def _start(self, release_dir: Path | None) -> _Sandbox:
        box = _new_sandbox(self.options, self.slot, release_dir, self.options.state / "runs", wall=3600.0)
        try:
            box.kernel.start()
        except BaseException:
            _discard(box)
            raise
        return box

    def take(self, release_dir: Path | None) -> _Sandbox | None:
        """A started kernel for a run of this release folder, or None (the caller starts one)."""
        with self._lock:
            found = next((k for k, (rd, _) in enumerate(self._ready) if rd == release_dir), None)
            if found is None:
                if release_dir in self._plan:
                    self._plan.remove(release_dir)
                future = None
            else:
                future = self._ready.pop(found)[1]
            self._fill()
        if future is None:
            return None
        try:
            box = future.result()
        except Exception:
            return None
        if not box.kernel.alive():
            _discard(box)
            return None
        return box

    def close(self) -> None:
        with self._lock:
            self._closed = True
            left = [f for (_, f) in self._ready]
            self._ready = []
            self._plan = []
        for f in left:
            f.cancel()
        for f in left:
            if not f.cancelled():
                try:
                    _discard(f.result())
                except Exception:
                    pass
        self._starter.shutdown(wait=True)


def run_notebook(nb, *, options: Options, slot: int, timeout_of, wall, release_dir: Path | None = None,
                 runs_root: Path | None = None, warm: WarmKernels | None = None) -> NotebookRun:
    """Execute every code cell of `nb` (a copy) top to bottom in a fresh sandboxed kernel (one of
    `warm`'s, if it has one ready); errors do not stop it. `timeout_of(index, cell)` gives each
    cell's timeout (seconds, or a function giving them); `wall`, the whole run's limit (seconds,
    or a function asked before each cell), counted from the first cell when the kernel was warm."""
    wall_now = wall if callable(wall) else (lambda: wall)
    nb = copy.deepcopy(nb)
    runs: dict[int, CellRun] = {}
    start = time.monotonic()
    stopped = None
    stopped_at = None
    box = warm.take(release_dir) if warm is not None else None
    if box is not None:
        box.kernel.reset_clock(wall_now())
    else:
        box = _new_sandbox(options, slot, release_dir, runs_root, wall_now())
    kernel = box.kernel
    try:
        try:
            if not kernel.alive():
                kernel.start()
            count = 0
            for i, cell in enumerate(nb.cells):
                if cell.get("cell_type") != "code":
                    continue
                try:
                    kernel.set_wall(wall_now())
                    r = kernel.run_cell(str(cell.source), timeout=timeout_of(i, cell))
                except KernelGone as gone:
                    stopped, stopped_at = gone, i
                    break
                count += 1
                runs[i] = r
                cell["outputs"] = [nbformat.from_dict(o) for o in r.outputs] + [
                    nbformat.from_dict({"output_type": "display_data", "data": {verify_mime(): e}, "metadata": {}})
                    for e in r.evidence]
                cell["execution_count"] = count
        except KernelGone as gone:
            stopped, stopped_at = gone, None
        limits = kernel.limits_hit()
    finally:
        _discard(box)
    return NotebookRun(nb, runs, stopped, stopped_at, time.monotonic() - start, limits)


def verify_mime() -> str:
    return EVIDENCE_MIME


def _rm_owned_leftovers(run_dir: Path) -> None:
    if run_dir.exists():  # files the kernel made read-only: make them writable again, then remove
        for p in sorted(run_dir.rglob("*"), key=lambda x: -len(x.parts)):
            try:
                if not p.is_symlink():
                    os.chmod(p, stat.S_IRWXU)
            except OSError:
                pass
        shutil.rmtree(run_dir, ignore_errors=True)
