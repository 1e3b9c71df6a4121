"""Grade one submission, or the instructor's solution once per assignment (the reference).

Everything here runs in the grader's trusted process: it assembles the notebook to execute
(`assemble`), runs it cell by cell in a sandboxed kernel (`kernel`), and judges each graded cell
(`verify`). It never imports or runs learner code.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import assemble as asm
from autograder import reuse
from autograder import sandbox as sb
from autograder import verify
from autograder.cells import EVIDENCE_MIME
from autograder.kernel import CellRun, KernelGone, SandboxedKernel

VERSION = "1"  # bump when a change of the grader changes grades: journals of older versions are redone
MAX_NOTEBOOK_BYTES = 20 * 1024**2


# what the sandbox's control group reports, said for the summary (limits no cell needs to report)
LIMIT_REASONS = {
    "processes": "a fork or a thread was refused at the sandbox's task limit",
    "memory": "the sandbox reached its memory limit",
}


class GraderError(RuntimeError):
    """The grader itself cannot grade (bad course setup, failing solution): exit non-zero."""


@dataclass
class Assignment:
    name: str
    source: dict[str, Path]  # notebook name (no .ipynb) -> instructor notebook
    release: dict[str, Path | None]  # notebook name -> student version (for checksums), if released
    release_dir: Path | None = None  # files besides notebooks are copied into each working copy
    # notebook name -> {grade_id: checksums of that locked cell in earlier releases} (autograder.release)
    past_checksums: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def notebooks(self) -> list[str]:
        return sorted(self.source)


@dataclass
class Options:
    limits: sb.Limits = field(default_factory=sb.Limits)
    sandboxed: bool = True
    state: Path = Path(".")


def digest_files(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(map(Path, paths)):
        h.update(str(p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def course_digest() -> str:
    pkg = Path(sb.course_package())
    return digest_files([p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts])


# ----------------------------------------------------------------------------------------------
# Running a notebook
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# The reference: the instructor's solution, run once per assignment
# ----------------------------------------------------------------------------------------------
def reference_key(assignment: Assignment, options: Options) -> str:
    return hashlib.sha256((digest_files(assignment.source.values()) + course_digest() + VERSION
                           + str(options.sandboxed)).encode()).hexdigest()[:16]


def reference(assignment: Assignment, options: Options, slot: int) -> dict:
    """Evidence, pass/fail and seconds of every graded cell of the solution, cached in the state
    folder under a digest of the solution notebooks and the course package."""
    key = reference_key(assignment, options)
    cache = options.state / "reference" / f"{assignment.name}-{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    try:
        out = _reference_once(assignment, options, slot, key)
    except GraderError:
        out = _reference_once(assignment, options, slot, key)  # once more: a loaded machine can fail a check
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, cache)
    return out


def _reference_once(assignment: Assignment, options: Options, slot: int, key: str) -> dict:
    out = {"key": key, "notebooks": {}}
    for nbname, path in assignment.source.items():
        nb = nbformat.read(path, as_version=4)
        lim = options.limits
        run = run_notebook(nb, options=options, slot=slot, timeout_of=lambda i, c: lim.cell_timeout,
                           wall=lim.wall or 900, release_dir=assignment.release_dir, runs_root=options.state / "runs")
        if run.stopped:
            raise GraderError(f"the instructor's solution {path} could not be run: {run.stopped.reason}")
        cells = {}
        seconds = {}
        for i, cell in enumerate(run.nb.cells):
            gid = asm.meta(cell).get("grade_id")
            r = run.runs.get(i)
            if gid and r is not None:
                seconds[gid] = r.seconds
            if gid and asm.is_graded_test(cell):
                if r is None or r.error or r.status != "ok":
                    raise GraderError(f"the instructor's solution fails its own graded cell {gid!r} in {path}: "
                                      f"{(r.error if r else 'did not run')[:300]}")
                cells[gid] = r.evidence
        out["notebooks"][nbname] = {"evidence": cells, "seconds": seconds, "total": run.seconds}
    return out


# ----------------------------------------------------------------------------------------------
# One submission
# ----------------------------------------------------------------------------------------------
def hidden_lines(source_nb) -> list[str]:
    lines = []
    for cell in source_nb.cells:
        inside = False
        for line in str(cell.get("source", "")).splitlines():
            s = line.strip()
            if s.startswith("### BEGIN HIDDEN TESTS"):
                inside = True
                continue
            if s.startswith("### END HIDDEN TESTS"):
                inside = False
                continue
            if inside and len(s) >= 12:
                lines.append(s)
    return lines


def safe_message(text: str, hidden: list[str]) -> str:
    """A failure message for the learner: one line, short, and never quoting a hidden test."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text or "").strip()
    if text.rstrip(":").strip() == "NotImplementedError":
        return "NotImplementedError: the exercise still holds its stub (raise NotImplementedError())"
    squeezed = " ".join(text.split())
    for line in hidden:
        if " ".join(line.split()) in squeezed:
            return "the check failed (its message quoted the hidden test's source, so it is withheld)"
    if len(squeezed) > 400:
        squeezed = squeezed[:397] + "..."
    return squeezed


def read_notebook(path: Path):
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise ValueError("the submitted notebook is not a regular file")
    if st.st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"the submitted notebook is larger than {MAX_NOTEBOOK_BYTES // 1024**2} MB")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_NOTEBOOK_BYTES + 1)
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    if not isinstance(nb.get("cells"), list):
        raise ValueError("the submitted file has no cells")
    return nb


@dataclass
class Executed:
    """A submission's notebooks, run; what `judge_submission` turns into the journal record once
    the solution's reference is known."""

    assignment: Assignment
    student: str
    result: dict  # the journal record so far (no verdicts yet)
    runs: dict  # notebook name -> (entry, NotebookRun | None, hidden lines)


def execute_submission(assignment: Assignment, student: str, files: dict[str, Path | None], ref,
                       options: Options, slot: int, warm: WarmKernels | None = None) -> Executed:
    """Run every notebook of one submission in its sandbox (the slow part); `judge_submission`
    then gives the verdicts.

    `ref` is the reference (a dict) or a Future of it: the submission's kernel may start while the
    solution still runs (cells then get the configured timeouts, not ones derived from the
    solution's times, until it is ready); only the verdicts need it.
    """
    started = time.monotonic()
    lim = options.limits
    if isinstance(ref, dict):
        ref_now = lambda: ref  # noqa: E731
        ref_ready = lambda: True  # noqa: E731
    else:
        ref_now = ref.result
        ref_ready = ref.done
    result = {"assignment": assignment.name, "student": student, "version": VERSION, "ref": None,
              "digest": submission_digest(files), "notebooks": {}, "limits": [], "flags": [], "notes": []}
    runs = {}
    for nbname in assignment.notebooks:
        source_nb = nbformat.read(assignment.source[nbname], as_version=4)
        release_path = assignment.release.get(nbname)
        release_nb = nbformat.read(release_path, as_version=4) if release_path and release_path.exists() else None
        hidden = hidden_lines(source_nb)
        graded = [c for c in source_nb.cells if asm.is_graded_test(c)]
        entry = {"cells": [], "notes": [], "limit": "", "reason": ""}
        result["notebooks"][nbname] = entry
        path = files.get(nbname)
        nb = None
        why_not = ""
        if path is None:
            why_not = "no notebook named " + nbname + ".ipynb in the submission"
        else:
            try:
                submitted = read_notebook(path)
                nb, notes = asm.assemble(source_nb, submitted, release_nb, assignment.past_checksums.get(nbname))
                entry["notes"] = notes + reuse.notes(source_nb, nb)
            except Exception as exc:
                why_not = f"the submitted notebook cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
        if nb is None:
            entry["reason"] = why_not
            for c in graded:
                m = asm.meta(c)
                entry["cells"].append(cell_record(m, False, False, "", why_not, 0.0))
            runs[nbname] = (entry, None, hidden)
            continue

        # The limits derive from the solution's times. A submission may start before the solution
        # has run (it runs beside them): until then the configured bounds apply, and they are asked
        # again while a cell runs, so they tighten as soon as the solution's times are known.
        def ref_nb(nbname=nbname):
            return ref_now()["notebooks"][nbname] if ref_ready() else None

        def timeout_of(i, cell, ref_nb=ref_nb):
            gid = asm.meta(cell).get("grade_id")

            def timeout():
                r = ref_nb()
                if r is None:
                    return lim.cell_timeout
                ref_s = r["seconds"].get(gid)
                if ref_s is None:  # a cell of the learner's own: half the solution's whole time
                    return max(lim.min_cell_timeout, min(lim.cell_timeout, r["total"] / 2))
                return max(lim.min_cell_timeout, min(lim.cell_timeout, 4 * ref_s + 5))
            return timeout

        def wall(ref_nb=ref_nb):
            r = ref_nb()
            return lim.wall or (max(30.0, 2.5 * r["total"] + 15) if r else 300.0)

        run = run_notebook(nb, options=options, slot=slot, timeout_of=timeout_of, wall=wall,
                           release_dir=assignment.release_dir, runs_root=options.state / "runs", warm=warm)
        runs[nbname] = (entry, run, hidden)
        result["notes"] += entry["notes"]
    result["seconds"] = round(time.monotonic() - started, 2)  # the sandbox's time, without waiting for the solution
    return Executed(assignment, student, result, runs)


def judge_submission(executed: Executed, ref: dict, autograded: Path | None = None) -> dict:
    """The verdicts: each graded cell's kernel report against the solution's evidence, compared
    here, outside any sandbox. Returns the journal record."""
    result = executed.result
    for nbname, (entry, run, hidden) in executed.runs.items():
        if run is None:
            continue
        refnb = ref["notebooks"][nbname]
        if run.stopped:
            entry["limit"] = run.stopped.limit
            entry["reason"] = run.stopped.reason
            result["limits"].append(run.stopped.limit)
        result["limits"] += run.limits
        if run.limits and not entry["reason"]:
            entry["reason"] = "; ".join(LIMIT_REASONS.get(x, x) for x in run.limits)
        for r in run.runs.values():  # limits hit in any cell, graded or not
            if r.status == "timeout":
                result["limits"].append("cell-timeout")
            if r.error.startswith("MemoryError"):
                result["limits"].append("memory")
        for i, cell in enumerate(run.nb.cells):
            if not asm.is_graded_test(cell):
                continue
            m = asm.meta(cell)
            gid = m["grade_id"]
            r = run.runs.get(i)
            if r is None:
                reason = run.stopped.reason if run.stopped else "the cell did not run"
                if run.stopped and run.stopped_at is not None and i > run.stopped_at:
                    reason = f"not run: {run.stopped.reason} in an earlier cell"
                entry["cells"].append(cell_record(m, False, False, "", reason, 0.0))
                continue
            kernel_passed = r.status == "ok" and not r.error
            ok, flag = verify.judge(kernel_passed, r.evidence, refnb["evidence"].get(gid))
            if flag:
                result["flags"].append(f"{gid}: {flag}")
            if ok:
                message = ""
            elif flag:
                message = "the check's evidence does not match the solution's; the cell earns no points"
            else:
                message = safe_message(r.error, hidden) or "the check failed"
            entry["cells"].append(cell_record(m, ok, kernel_passed, flag, message, r.seconds))
            entry["cells"][-1]["verified"] = bool(refnb["evidence"].get(gid))
        if autograded is not None:
            out = autograded / executed.student / executed.assignment.name
            out.mkdir(parents=True, exist_ok=True)
            tmp = out / f".{nbname}.ipynb.tmp"
            nbformat.write(run.nb, str(tmp))
            os.replace(tmp, out / f"{nbname}.ipynb")
    result["ref"] = ref["key"]
    result["limits"] = sorted(set(x for x in result["limits"] if x))
    result["score"] = sum(c["points"] for e in result["notebooks"].values() for c in e["cells"])
    result["max_score"] = sum(c["max_points"] for e in result["notebooks"].values() for c in e["cells"])
    return result


def cell_record(m: dict, ok: bool, kernel_passed: bool, flag: str, message: str, seconds: float) -> dict:
    pts = float(m.get("points", 0))
    return {"grade_id": m["grade_id"], "max_points": pts, "points": pts if ok else 0.0, "passed": ok,
            "kernel_passed": kernel_passed, "flag": flag, "message": message, "seconds": round(seconds, 3)}


def submission_digest(files: dict[str, Path | None]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        p = files[name]
        h.update(name.encode())
        if p is not None:
            try:
                h.update(p.read_bytes()[:MAX_NOTEBOOK_BYTES + 1])
            except OSError:
                h.update(b"(unreadable)")
    return h.hexdigest()
