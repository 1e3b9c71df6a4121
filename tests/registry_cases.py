"""Run an assignment's graded cells in this process, with one solution cell replaced: how the unit
tests call the checks directly with every case of the registry (autograder/samples/cases.py).

The namespace is built as the notebook builds it, minus the demonstrations: the first code cell (the
notebook's imports), then every solution cell and every graded test cell in notebook order. A graded
cell fails when it raises, which is nbgrader's rule too.
"""
from __future__ import annotations

import os
import socket
import traceback
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.cells import is_graded_test, meta
from autograder.samples.cases import Case, strip_solution_markers

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Verdict:
    grade_id: str
    passed: bool
    error: str = ""


def solution_notebook(assignment: str, root: Path = REPO):
    (path,) = (Path(root) / "solutions" / assignment).glob("*.ipynb")  # root may be another course
    return nbformat.read(path, as_version=4)


def solution_cell_source(assignment: str, cell: str, root: Path = REPO) -> str:
    for c in solution_notebook(assignment, root).cells:
        if meta(c).get("grade_id") == cell and meta(c).get("solution"):
            return c.source
    raise KeyError(f"no solution cell {cell!r} in {assignment}")


def exercise_cells(assignment: str, cell: str, root: Path = REPO) -> set[str]:
    """The graded test cells that follow solution cell `cell`, up to the next solution cell."""
    found, inside = set(), False
    for c in solution_notebook(assignment, root).cells:
        m = meta(c)
        if m.get("solution") and m.get("grade_id"):
            inside = m["grade_id"] == cell
        elif inside and is_graded_test(c):
            found.add(m["grade_id"])
    return found


def run_in_process(assignment: str, replace: dict[str, str] | None = None, root: Path = REPO,
                   only: set[str] | None = None) -> list[Verdict]:
    """Verdicts of every graded cell of `assignment` (or of the graded cells in `only`), with the
    solution cells in `replace` changed."""
    nb = solution_notebook(assignment, root)
    replace = replace or {}
    code = [c for c in nb.cells if c.cell_type == "code"]
    namespace: dict = {"__name__": "__main__"}
    verdicts = []
    old = os.environ.get("COURSE_EVIDENCE")
    os.environ["COURSE_EVIDENCE"] = "0"
    default_timeout = socket.getdefaulttimeout()  # a case may change it; the next must not inherit it
    try:
        for i, cell in enumerate(code):
            m = meta(cell)
            graded_test = is_graded_test(cell)
            if not (i == 0 or m.get("solution") or graded_test):
                continue
            if graded_test and only is not None and m["grade_id"] not in only:
                continue
            source = replace.get(m.get("grade_id"), strip_solution_markers(cell.source) if m.get("solution") else cell.source)
            try:
                exec(compile(source, f"<{m.get('grade_id') or 'cell ' + str(i)}>", "exec"), namespace)
            except BaseException as exc:  # noqa: BLE001 - a learner's cell may raise anything
                if isinstance(exc, (KeyboardInterrupt, SystemExit)) and not graded_test:
                    raise
                if graded_test:
                    verdicts.append(Verdict(m["grade_id"], False, f"{type(exc).__name__}: {exc}"))
                elif not m.get("solution"):
                    raise RuntimeError(f"{assignment}: the imports cell failed: {traceback.format_exc()}") from exc
                continue
            if graded_test:
                verdicts.append(Verdict(m["grade_id"], True))
    finally:
        socket.setdefaulttimeout(default_timeout)
        if old is None:
            os.environ.pop("COURSE_EVIDENCE", None)
        else:
            os.environ["COURSE_EVIDENCE"] = old
    return verdicts


def case_replace(case: Case, root: Path = REPO) -> dict[str, str]:
    return {case.cell: case.cell_source(solution_cell_source(case.assignment, case.cell, root))}
