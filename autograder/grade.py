"""Grade one submission: run it (`execute_submission`), then judge it against the instructor's
solution (`judge_submission`, once `reference` has run the solution).

Everything here runs in the grader's trusted process: it assembles the notebook to execute
(`assemble`), runs it cell by cell in a sandboxed kernel (`runner`, `kernel`), and judges each
graded cell (`verify`) into the submission's journal record (`journal`). It never imports or runs
learner code. The order of the stages for a whole class: `stages`.
"""
from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import assemble as asm
from autograder import reuse
from autograder import sandbox as sb
from autograder import verify
from autograder.journal import (MAX_NOTEBOOK_BYTES, VERSION, cell_record, close_record,  # noqa: F401 (VERSION)
                                new_notebook_entry, new_record, submission_digest)
from autograder.runner import NotebookRun, WarmKernels, run_notebook, verify_mime  # noqa: F401 (their old home)

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


def _reuse_notes(source_nb, nb) -> list[str]:
    """reuse.notes, a reading aid: should it fail, one note says so, and the other notes stand."""
    try:
        return reuse.notes(source_nb, nb)
    except Exception as exc:  # noqa: BLE001 - never lose the assembly's notes to it
        return [f"the cells could not be read for the course's own code ({type(exc).__name__}: {str(exc)[:120]})"]


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
    result = new_record(assignment.name, student, submission_digest(files))
    runs = {}
    for nbname in assignment.notebooks:
        source_nb = nbformat.read(assignment.source[nbname], as_version=4)
        release_path = assignment.release.get(nbname)
        release_nb = nbformat.read(release_path, as_version=4) if release_path and release_path.exists() else None
        hidden = hidden_lines(source_nb)
        graded = [c for c in source_nb.cells if asm.is_graded_test(c)]
        entry = new_notebook_entry()
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
            except Exception as exc:
                why_not = f"the submitted notebook cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
            else:
                entry["notes"] = notes + _reuse_notes(source_nb, nb)
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
    return close_record(result, ref["key"])
