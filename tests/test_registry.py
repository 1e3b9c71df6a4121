"""The registry of wrong and alternative implementations (autograder/samples/cases.py): every case
applies to today's solution, loses exactly the graded cells it names, in this process and in a real
kernel, and every rule an exercise states has a case that breaks only that rule.
(The grader's sample class grades the same cases: tests/test_autograder_samples.py.)"""
from __future__ import annotations


import pytest

from autograder.cells import is_graded_test, meta
from autograder.release import assignments
from autograder.samples.cases import apply_diff, load_cases, load_rules, make_diff, read_case, CaseError
from registry_cases import case_replace, exercise_cells, run_in_process, solution_notebook

CASES = load_cases()
IDS = [f"{c.assignment}/{c.name}" for c in CASES]
ASSIGNMENTS = assignments()


def graded_ids(assignment: str) -> list[str]:
    return [meta(c)["grade_id"] for c in solution_notebook(assignment).cells if is_graded_test(c)]


def exercise_text(assignment: str) -> str:
    """The notebook's markdown with white space folded, as a quote is compared against it."""
    nb = solution_notebook(assignment)
    return " ".join(" ".join(c.source.split()) for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_names_real_cells_and_applies(case):
    nb = solution_notebook(case.assignment)
    solutions = {meta(c)["grade_id"] for c in nb.cells if meta(c).get("solution") and meta(c).get("grade_id")}
    assert case.cell in solutions, f"{case.path}: {case.cell!r} is not a solution cell of {case.assignment} ({sorted(solutions)})"
    unknown = set(case.fails) - set(graded_ids(case.assignment))
    assert not unknown, f"{case.path}: fails names {sorted(unknown)}, which are not graded cells of {case.assignment}"
    assert case.what, f"{case.path}: no 'what:' line"
    source = case_replace(case)[case.cell]
    compile(source, str(case.path), "exec")
    if case.rule:
        rules = {r["id"] for rs in load_rules(case.assignment).values() for r in rs}
        assert case.rule in rules, f"{case.path}: rule {case.rule!r} is not in {case.assignment}/rules.json"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_loses_exactly_its_cells_in_process(case):
    """In this process, the graded cells of the case's own exercise and every cell it names: the
    verdict of every other graded cell is compared where the whole notebook runs in a kernel (below)."""
    cells = exercise_cells(case.assignment, case.cell) | set(case.fails)
    assert cells, f"{case.path}: solution cell {case.cell!r} is followed by no graded cell"
    verdicts = run_in_process(case.assignment, case_replace(case), only=cells)
    assert {v.grade_id for v in verdicts} == cells, f"{case.path}: not every graded cell of {sorted(cells)} ran"
    failed = {v.grade_id for v in verdicts if not v.passed}
    why = {v.grade_id: v.error[:200] for v in verdicts if not v.passed}
    assert failed == set(case.fails), f"{case.assignment}/{case.name}: failed {sorted(failed) or 'none'}, expected {case.fails or 'none'}: {why}"


# In a real kernel, every case is executed twice elsewhere, with the same exact comparison: graded
# by the grader in the sample class (tests/test_autograder_samples.py, sandboxed), and executed at a
# load of 42 kernels by the load check (tests/load_check.py, a step of .ci/run). Run one case in a
# kernel by hand with:  .venv/bin/python tests/load_check.py --copies 1 --rounds 1 --only 03
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_rule_is_quoted_and_has_a_case(assignment):
    rules = load_rules(assignment)
    assert rules, f"{assignment} has no rules.json: the table of the rules its exercises state"
    text = exercise_text(assignment)
    cases = load_cases(assignment=assignment)
    graded = set(graded_ids(assignment))
    solution_cells = {meta(c)["grade_id"] for c in solution_notebook(assignment).cells if meta(c).get("solution")}
    for exercise, table in rules.items():
        assert exercise in solution_cells, f"{assignment}/rules.json: {exercise!r} is not a solution cell"
        assert table, f"{assignment}/rules.json: {exercise} lists no rule"
        for rule in table:
            quote = " ".join(rule["quote"].split())
            assert quote in text, f"{assignment}/rules.json {rule['id']}: the quote is not in the notebook's text: {quote!r}"
            assert rule.get("check"), f"{assignment}/rules.json {rule['id']}: name the check case that breaks only this rule"
            shown = [c for c in cases if c.rule == rule["id"] and c.cell == exercise and c.fails]
            assert shown, f"{assignment}/rules.json {rule['id']}: no wrong implementation in the registry breaks it (add one with 'rule: {rule['id']}')"
            assert set(shown[0].fails) <= graded


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_exercise_has_correct_alternatives(assignment):
    """Correct work in another idiom keeps every point: at least two alternatives per assignment."""
    alternatives = [c for c in load_cases(assignment=assignment) if not c.fails]
    assert len(alternatives) >= 2, f"{assignment}: {len(alternatives)} alternative implementation(s) in the registry; want 2 or more"


def test_diff_round_trip_and_loud_mismatch(tmp_path):
    old = "def f(x):\n    a = 1\n    return x + a\n"
    new = "def f(x):\n    a = 2\n    return x + a\n"
    diff = make_diff("f", old, new)
    assert apply_diff(old, diff) == new
    with pytest.raises(CaseError, match="no longer matches"):
        apply_diff(old.replace("a = 1", "a = 3"), diff)
    path = tmp_path / "x.diff"
    path.write_text("what: adds two\nfails: f-cell other-cell\nrule: r1\n" + diff)
    case = read_case(path)
    assert (case.cell, case.fails, case.rule, case.what) == ("f", ["f-cell", "other-cell"], "r1", "adds two")
    assert case.cell_source(old.replace("    a = 1", "    ### BEGIN SOLUTION\n    a = 1\n    ### END SOLUTION")).rstrip() == new.rstrip()


def test_whole_cell_case(tmp_path):
    path = tmp_path / "alt.py"
    path.write_text("# what: another idiom\n# cell: f\n# fails: none\ndef f(x):\n    return x\n")
    case = read_case(path)
    assert (case.cell, case.fails, case.kind) == ("f", [], "alternative")
    assert case.cell_source("anything") == "def f(x):\n    return x\n"
    bad = tmp_path / "bad.py"
    bad.write_text("# what: no cell line\ndef f(): pass\n")
    with pytest.raises(CaseError, match="cell"):
        read_case(bad)
