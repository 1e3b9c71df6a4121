"""The sample submissions, graded by the real command, each with its expected score.

Two classes are graded, each by one run of `python -m autograder grade`:
- the grader's fixture course (tests/fixtures/course, a tiny sockets assignment): every sample,
  hostile ones included;
- the course's own assignments (solutions/): correct, blank and each assignment's own samples
  (classic bugs), plus every hostile sample on every assignment (AUTOGRADER_HOSTILE_ON=03-udp
  limits them to one assignment: a hostile notebook gained a point on 02 that 03 never showed).
Each sample is then one test, named for what the submission does.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import samples as smp
from autograder.release import REPO, assignments as repo_assignments
from autograder.samples.check import problems, read_csv

FIXTURE = REPO / "tests" / "fixtures" / "course"
pytestmark = [pytest.mark.grading, pytest.mark.timeout(1800)]


def grade_class(tmp: Path, root: Path, names: list[str], hostile_on: set[str]) -> dict:
    sub = tmp / "submitted"
    db = tmp / "gradebook.db"
    written = {}
    for a in names:
        written.update(smp.write_class(sub, [a], root, hostile=a in hostile_on, db=str(db)))
    out = tmp / "grades.csv"
    cmd = [sys.executable, "-m", "autograder", "grade", *names, "--submitted", str(sub), "--out", str(out),
           "--root", str(root), "--db", str(db), "--autograded", str(tmp / "autograded"),
           "--feedback", str(tmp / "feedback")]  # the default --jobs, as an instructor runs it
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500,
                          env=dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]))
    return {"proc": proc, "written": written, "grades": read_csv(out) if out.exists() else {}, "root": root,
            "journal": tmp / "autograded" / ".grader" / "journal", "autograded": tmp / "autograded",
            "feedback": tmp / "feedback"}


def graded_once(tmp_path_factory, name: str, *args) -> dict:
    """Grade a class once per test session, even when pytest-xdist runs this module's tests in
    several workers: the first worker grades, the others wait on a lock and read its results."""
    import fcntl
    import json
    import subprocess as sp

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return grade_class(tmp_path_factory.mktemp(name), *args)
    shared = tmp_path_factory.getbasetemp().parent / f"autograder-{name}"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "done.json"
        if not done.exists():
            g = grade_class(shared, *args)
            p = g["proc"]
            done.write_text(json.dumps({"rc": p.returncode, "out": p.stdout, "err": p.stderr,
                                        "written": [[a, s] for (a, s) in g["written"]]}))
    d = json.loads(done.read_text())
    root = args[0]
    return {"proc": sp.CompletedProcess([], d["rc"], d["out"], d["err"]), "written": {tuple(x): None for x in d["written"]},
            "grades": read_csv(shared / "grades.csv") if (shared / "grades.csv").exists() else {}, "root": root,
            "journal": shared / "autograded" / ".grader" / "journal", "autograded": shared / "autograded",
            "feedback": shared / "feedback"}


@pytest.fixture(scope="module")
def fixture_class(tmp_path_factory):
    return graded_once(tmp_path_factory, "fixture-class", FIXTURE, ["00-echo"], {"00-echo"})


REAL = repo_assignments()
_hostile = os.environ.get("AUTOGRADER_HOSTILE_ON", "all")  # every hostile sample on every assignment
HOSTILE_ON = set(REAL) if _hostile == "all" else {_hostile}


_graded: dict[str, dict] = {}


def course_class_of(tmp_path_factory, assignment: str) -> dict:
    """One grading run per assignment (the registry makes classes large: no single run may near its
    timeout), graded once per test session even under xdist."""
    if assignment not in _graded:
        _graded[assignment] = graded_once(tmp_path_factory, f"course-{assignment}", REPO, [assignment], HOSTILE_ON)
    return _graded[assignment]


@pytest.fixture(scope="module")
def course_class(tmp_path_factory):
    (a,) = HOSTILE_ON if len(HOSTILE_ON) == 1 else sorted(HOSTILE_ON)[:1]
    return course_class_of(tmp_path_factory, a)


ALL = smp.load()
FIXTURE_CASES = [("00-echo", s) for s in smp.for_assignment("00-echo", ALL)]
COURSE_CASES = [(a, s) for a in REAL for s in smp.for_assignment(a, ALL, hostile=a in HOSTILE_ON)]


def _check(graded: dict, assignment: str, sample: smp.Sample) -> None:
    proc = graded["proc"]
    assert proc.returncode == 0, f"the grader exited {proc.returncode}: {proc.stderr[-2000:]}"
    found = problems(sample, assignment, sample.name, root=graded["root"], grades=graded["grades"],
                     journal=graded["journal"], autograded=graded["autograded"], feedback=graded["feedback"])
    assert not found, f"{assignment}/{sample.name} ({sample.spec.get('what')}): " + "; ".join(found)


@pytest.mark.parametrize("assignment,sample", FIXTURE_CASES, ids=[f"{a}-{s.name}" for a, s in FIXTURE_CASES])
def test_fixture_sample(fixture_class, assignment, sample):
    _check(fixture_class, assignment, sample)


@pytest.mark.parametrize("assignment,sample", COURSE_CASES, ids=[f"{a}-{s.name}" for a, s in COURSE_CASES])
def test_course_sample(tmp_path_factory, assignment, sample):
    _check(course_class_of(tmp_path_factory, assignment), assignment, sample)


def test_every_row_once_and_no_hidden_test_in_any_feedback(fixture_class):
    """One CSV row per student and assignment; no feedback page quotes a hidden test."""
    import html

    import nbformat

    from autograder.grade import hidden_lines

    graded = fixture_class
    assert graded["proc"].returncode == 0, graded["proc"].stderr[-2000:]
    expected = {(a, student) for (a, student) in graded["written"]}
    assert set(graded["grades"]) == expected
    hidden = hidden_lines(nbformat.read(FIXTURE / "solutions" / "00-echo" / "00-echo.ipynb", as_version=4))
    assert hidden
    pages = list(graded["feedback"].rglob("*.html"))
    assert len(pages) == len(expected)
    for page in pages:
        text = html.unescape(page.read_text())
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{page} quotes hidden tests: {leaked[:2]}"
        assert "BEGIN HIDDEN TESTS" not in text and "check_calls(" not in text


def test_summary_names_limits_and_flags(fixture_class):
    out = fixture_class["proc"].stdout
    assert "Submissions that hit a limit" in out
    for what in ("hangs-ignoring-sigint", "cell-timeout", "floods-output", "output", "kills-own-kernel", "kernel-died"):
        assert what in out, f"the summary does not mention {what}"
    assert "installs-ipython-hook-forging-pass" in out.split("Flagged")[1]
    assert "mean" in out and "double-hidden" in out


def _seconds(graded: dict, assignment: str, student: str) -> float:
    import json

    return json.loads((graded["journal"] / assignment / f"{student}.json").read_text())["seconds"]


def test_hanging_submission_costs_about_a_cell_timeout(fixture_class):
    """A hang costs one cell timeout plus the interrupt grace, never the sum of all timeouts."""
    from autograder.kernel import INTERRUPT_GRACE
    from autograder.sandbox import Limits

    hang, correct = _seconds(fixture_class, "00-echo", "hangs-ignoring-sigint"), _seconds(fixture_class, "00-echo", "correct")
    assert hang < correct + Limits().min_cell_timeout + INTERRUPT_GRACE + 8, f"hanging submission took {hang} s"


def test_hanging_submission_costs_about_twice_a_correct_one(course_class):
    (a,) = HOSTILE_ON if len(HOSTILE_ON) == 1 else sorted(HOSTILE_ON)[:1]
    hang, correct = _seconds(course_class, a, "hangs-ignoring-sigint"), _seconds(course_class, a, "correct")
    assert hang < 2 * correct + 8, f"{a}: hanging submission took {hang} s, a correct one {correct} s"
