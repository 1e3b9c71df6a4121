"""Execute one notebook with a real Jupyter kernel and report each graded cell: the project's tests
use it to check solutions, releases and the sample cases (tests/test_notebooks.py,
tests/notebook_cases.py, tests/load_check.py). It is plain nbclient, with no sandbox and no limits
besides a cell timeout: for trusted notebooks only. The grader does not use it: it runs submissions
in `kernel.SandboxedKernel` (see `grade`); both read cells with the same helpers (`cells`).

A graded cell is an nbgrader test cell (`grade: true`, `solution: false`); it passes when running
it produced no error output, which is nbgrader's own rule for autograded test cells.
"""
from __future__ import annotations

import copy
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from autograder.cells import EVIDENCE_MIME, evidence_in, is_graded_test  # noqa: F401 (EVIDENCE_MIME: its old name)
from autograder.cells import meta as nbgrader_meta


@dataclass
class CellResult:
    grade_id: str
    points: float
    passed: bool
    error: str = ""  # "ename: evalue" of the first error output, or why the cell did not run
    seconds: float = 0.0
    evidence: list = field(default_factory=list)


def cell_by_grade_id(nb, grade_id: str):
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"no cell with grade_id {grade_id!r}")


def first_error(cell) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"
    return ""


def evidence_of(cell) -> list:
    return [e for e in map(evidence_in, cell.get("outputs", [])) if e is not None]


def execute(
    path: str | Path,
    replace: dict[str, str] | None = None,
    timeout: float = 30,
    startup_timeout: float = 60,
) -> tuple[nbformat.NotebookNode, list[CellResult]]:
    """Run the notebook at `path` top to bottom (errors do not stop it) in its own folder.

    `replace` maps a grade_id to new source for that cell: the tests use it to put a deliberately
    wrong implementation in a solution cell. Returns the executed notebook and one CellResult per
    graded cell; cells that never ran (the kernel died) fail with the reason.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    nb = copy.deepcopy(nb)
    for grade_id, source in (replace or {}).items():
        cell_by_grade_id(nb, grade_id).source = source
    stopped = ""
    # ZeroMQ over unix sockets in a private folder: TCP ports chosen for the kernel's channels can be
    # taken by another process before the kernel binds them when many notebooks run at once.
    with tempfile.TemporaryDirectory(prefix="course-kernel-") as tmp:
        km = KernelManager(
            kernel_name="python3",
            transport="ipc",
            ip=os.path.join(tmp, "k"),
            connection_file=os.path.join(tmp, "kernel.json"),
        )
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            startup_timeout=startup_timeout,
            allow_errors=True,
            record_timing=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        try:
            # cleanup_kc: nbclient shuts down only kernels of managers it made itself; without it,
            # every executed notebook left its kernel running until the process exited (the load
            # check's 276 notebooks then held 320 kernels, 23 GB, and the OOM killer ended it)
            client.execute(cleanup_kc=True)
        except CellTimeoutError as exc:
            stopped = f"a cell ran longer than {timeout} s: {str(exc).splitlines()[0]}"
        except DeadKernelError as exc:
            stopped = f"the kernel died: {exc}"
        finally:
            if km.has_kernel:
                try:
                    km.shutdown_kernel(now=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
    return nb, results_of(nb, stopped)


def cell_seconds(cell) -> float:
    ex = cell.get("metadata", {}).get("execution", {})
    start, end = ex.get("iopub.execute_input") or ex.get("shell.execute_reply.started"), ex.get("shell.execute_reply")
    if not start or not end:
        return 0.0
    from datetime import datetime

    def parse(s):
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


def results_of(nb, stopped: str = "") -> list[CellResult]:
    results = []
    for cell in nb.cells:
        if not is_graded_test(cell):
            continue
        m = nbgrader_meta(cell)
        ran = "execution" in cell.get("metadata", {}) and cell.get("execution_count") is not None
        err = first_error(cell) if ran else (stopped or "the cell did not run")
        results.append(
            CellResult(
                grade_id=m["grade_id"],
                points=float(m.get("points", 0)),
                passed=ran and not err,
                error=err,
                seconds=cell_seconds(cell),
                evidence=evidence_of(cell),
            )
        )
    return results


def timed_execute(path, **kwargs):
    """execute() plus the wall-clock seconds it took."""
    start = time.monotonic()
    nb, results = execute(path, **kwargs)
    return nb, results, time.monotonic() - start
