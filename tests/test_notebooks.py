"""Every assignment: the solution passes, the blank release fails fast, the release is what nbgrader
makes of the solution, and no committed notebook carries outputs."""
import json

import pytest

from autograder.execute import is_graded_test, nbgrader_meta, timed_execute
from autograder.release import generate
from notebook_cases import REPO, release_of, solution_notebooks

SOLUTIONS = solution_notebooks()
ids = [p.parent.name for p in SOLUTIONS]

# A blank release fails fast: each graded cell fails at once (the stub raises before any check
# waits), never by waiting out a timeout; the whole notebook also runs the lesson's live cells (lab
# demos among them), whose time is the lesson's, not the blank's.
BLANK_CELL_LIMIT = 5.0  # seconds for one graded cell of a blank release
BLANK_LIMIT = 45.0  # seconds for a whole blank notebook


@pytest.mark.notebooks
@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids)
def test_solution_passes_every_graded_cell(solution):
    _, results, seconds = timed_execute(solution)
    assert results, f"{solution.name} has no graded cells"
    failed = [(r.grade_id, r.error) for r in results if not r.passed]
    assert not failed, f"graded cells failed in the solution of {solution.parent.name}: {failed}"
    print(f"{solution.parent.name}: {len(results)} graded cells pass in {seconds:.1f} s")


@pytest.mark.notebooks
@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids)
def test_blank_release_fails_every_graded_cell_fast(solution):
    release = release_of(solution)
    nb, results, seconds = timed_execute(release, timeout=BLANK_LIMIT)
    passed = [r.grade_id for r in results if r.passed]
    assert not passed, f"graded cells pass on the blank release of {solution.parent.name}: {passed}"
    unclear = [(r.grade_id, r.error) for r in results if not r.error.startswith(("NotImplementedError", "YourCodeError"))]
    assert not unclear, f"blank release fails without NotImplementedError or a course message: {unclear}"
    # What the learner sees: one line that says what to do, no traceback through the library.
    for cell in nb.cells:
        if is_graded_test(cell):
            (error,) = [o for o in cell.outputs if o.get("output_type") == "error"]
            shown = "\n".join(error["traceback"]).splitlines()
            gid = nbgrader_meta(cell)["grade_id"]
            assert len(shown) == 1, f"{solution.parent.name} {gid}: the blank stub's error shows {len(shown)} lines: {shown[:4]}"
            assert "blank stub" in shown[0] or error["ename"] == "YourCodeError", f"{gid}: {shown[0]}"
    slow = [(r.grade_id, round(r.seconds, 1)) for r in results if r.seconds >= BLANK_CELL_LIMIT]
    assert not slow, f"graded cells of the blank {solution.parent.name} took {BLANK_CELL_LIMIT} s or more to fail: {slow}"
    assert seconds < BLANK_LIMIT, f"blank {solution.parent.name} took {seconds:.1f} s (limit {BLANK_LIMIT} s)"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids)
def test_release_is_what_nbgrader_generates(solution, tmp_path):
    release = generate(tmp_path, [solution.parent.name])
    committed = release_of(solution)
    assert committed.exists(), f"{committed} is missing: run `make release`"
    generated = release / solution.parent.name / solution.name
    assert committed.read_text() == generated.read_text(), f"{committed} differs from nbgrader's release: run `make release`"


@pytest.mark.parametrize("path", sorted(REPO.glob("solutions/*/*.ipynb")) + sorted(REPO.glob("notebooks/*/*.ipynb")), ids=str)
def test_committed_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"


@pytest.mark.grading
@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids)
def test_blank_release_scores_zero_under_plain_nbgrader(solution, tmp_path):
    """Plain `nbgrader autograde` (no course grader) gives the blank release 0: the one-line stub
    message shortens what is shown, never what is raised."""
    from autograder import samples as smp
    from autograder.benchmark import run_nbgrader

    assignment = solution.parent.name
    blank = [s for s in smp.load() if s.name == "blank"]
    smp.write_class(tmp_path / "submitted", [assignment], REPO, samples=blank, hostile=False)
    _, scores = run_nbgrader(tmp_path, assignment, tmp_path / "submitted")
    assert scores == {"blank": 0.0}, f"plain nbgrader scored the blank {assignment}: {scores}"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids)
def test_release_history_knows_the_committed_release(solution):
    """Every locked cell of the committed release has its checksum in autograder/release_history
    (written by `make release`), so submissions of this release are never reported as edited after
    a later change."""
    import nbformat

    from autograder.release import locked_checksums, past_checksums

    name = solution.parent.name
    history = past_checksums(name)
    release = release_of(solution)
    missing = {gid for gid, c in locked_checksums(nbformat.read(release, as_version=4)).items()
               if c not in history.get(release.stem, {}).get(gid, [])}
    assert not missing, f"{name}: checksums of {sorted(missing)} are not in autograder/release_history: run `make release`"


def _graded_test_cells(solution):
    import nbformat

    nb = nbformat.read(solution, as_version=4)
    return [(nbgrader_meta(c)["grade_id"], c.source) for c in nb.cells if is_graded_test(c)]


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids)
def test_graded_cells_say_what_they_check_and_print_one_line(solution):
    """The same shape in every notebook: the first line says what the visible part checks (and, after
    "hidden:", what the hidden tests add); the last line prints one short line when it passes."""
    import re

    for gid, source in _graded_test_cells(solution):
        lines = [line for line in source.splitlines() if line.strip()]
        assert lines[0].lower().startswith("# checks that "), f"{solution.parent.name} {gid}: first line {lines[0]!r} should start '# checks that'"
        if "### BEGIN HIDDEN TESTS" in source:
            head = " ".join(line for line in lines if line.startswith("#") and not line.startswith("###"))
            assert "hidden:" in head.lower(), f"{solution.parent.name} {gid}: has hidden tests but its comment does not say '(hidden: ...)'"
        assert re.fullmatch(r'print\("passed: [^"]+"\)', lines[-1].strip()), \
            f"{solution.parent.name} {gid}: last line {lines[-1]!r} should be print(\"passed: ...\")"
