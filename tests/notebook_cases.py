"""Shared pieces of the notebook tests: where the assignments are, and how a deliberately wrong
implementation is shown to lose points."""
from __future__ import annotations

from pathlib import Path

from autograder.execute import execute

REPO = Path(__file__).resolve().parent.parent


def solution_notebooks() -> list[Path]:
    return sorted((REPO / "solutions").glob("*/*.ipynb"))


def release_of(solution: Path) -> Path:
    return REPO / "notebooks" / solution.parent.name / solution.name


def solution_of(assignment: str) -> Path:
    (found,) = (REPO / "solutions" / assignment).glob("*.ipynb")
    return found


def assert_loses_points(assignment: str, solution_id: str, wrong_source: str, failing: list[str]) -> None:
    """Put `wrong_source` in the solution cell `solution_id` of the assignment's instructor notebook,
    run it, and assert that each graded cell in `failing` fails (hidden tests included) while
    graded cells of the other exercises still pass."""
    _, results = execute(solution_of(assignment), replace={solution_id: wrong_source})
    by_id = {r.grade_id: r for r in results}
    missing = [g for g in failing if g not in by_id]
    assert not missing, f"no graded cells {missing} in {assignment}; graded cells are {sorted(by_id)}"
    still_passing = [g for g in failing if by_id[g].passed]
    assert not still_passing, f"wrong implementation of {solution_id} still passes {still_passing}"
