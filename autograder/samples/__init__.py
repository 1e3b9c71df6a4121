"""Sample submissions with their expected scores: the grader's own test suite, and a demo class.

A sample is one JSON file, named for what the submission does:

- autograder/samples/<assignment>/<name>.json: a sample of that assignment;
- autograder/samples/common/<name>.json with "assignment": "*": applied to every assignment
  (correct, blank, and the hostile behaviours, which do not depend on the exercise).

Fields (all optional except "what" and "expect"):

    "what":     one sentence: what this submission does
    "base":     "release" (the student notebook as handed out, stubs and all: the default) or
                "solution" (every solution cell holds the instructor's solution)
    "replace":  {solution grade_id: source}: the learner's code in that solution cell
    "stub":     [solution grade_id, ...]: those solution cells keep the release's stub
    "prepend", "append": [source, ...]: plain cells put first / last
    "before_first_test": [source, ...]: plain cells put just before the first graded test cell
    "before":   {grade_id: [source, ...]}: plain cells put just before that cell
    "edit_locked": {grade_id: source} (or {"*": source} for every graded test cell): the learner
                edits a locked cell; the grader must restore it
    "raw":      text written as the notebook file instead (not JSON, say)
    "tags":     ["hostile", ...]
    "expect":   {"score": "full" | "zero" | number | "any" (containment only: a fork bomb),
                 "limits": [limit, ...]   (each must be among the limits the submission hit;
                                           "a|b" means either),
                 "limits_as_root": [...]  (instead of "limits" when grading as root: limits only a
                                           sandbox with a uid of its own can attribute),
                 "flagged": true          (the kernel said pass and the evidence disagreed),
                 "note": "substring"      (a restored/dropped cell note),
                 "hidden_not_leaked": true (no hidden test line in any output the learner code
                                            made, nor in the feedback),
                 "no_files": [path, ...]  (must not exist after grading; {ROOT} and {STATE} expand),
                 "no_process": "marker"   (no process with this in its command line survives),
                 "output_contains": "text" (some non-graded cell's output shows it)}

Sources may use {ROOT} (the course folder), {ASSIGNMENT}, {NOTEBOOK}, {DB} (the gradebook file).
A new assignment needs no new code: `common/` applies to it at once; add JSON files under its own
folder for its classic bugs.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.cells import meta
from autograder.samples.cases import strip_solution_markers

HERE = Path(__file__).resolve().parent


@dataclass
class Sample:
    name: str
    assignment: str  # an assignment name, or "*"
    spec: dict = field(default_factory=dict)

    @property
    def expect(self) -> dict:
        return self.spec.get("expect", {})

    @property
    def tags(self) -> list[str]:
        return self.spec.get("tags", [])


def load(folder: Path = HERE) -> list[Sample]:
    """Every sample: the JSON ones and the registry's cases (autograder/samples/cases.py)."""
    from autograder.samples.cases import load_cases

    out = []
    for p in sorted(Path(folder).glob("*/*.json")):
        if p.name == "rules.json":
            continue
        spec = json.loads(p.read_text())
        assignment = spec.get("assignment") or p.parent.name
        out.append(Sample(p.stem, assignment, spec))
    for case in load_cases(folder):
        spec = {"what": case.what, "base": "solution", "case": case, "expect": {"fails": case.fails}}
        out.append(Sample(case.name, case.assignment, spec))
    seen: dict[tuple[str, str], Sample] = {}
    for s in out:
        if (s.assignment, s.name) in seen:
            raise ValueError(f"two samples of {s.assignment} are named {s.name!r}: rename one")
        seen[(s.assignment, s.name)] = s
    return out


def for_assignment(assignment: str, samples: list[Sample], hostile: bool = True) -> list[Sample]:
    """The samples that apply to `assignment` (its own, then the common ones)."""
    own = [s for s in samples if s.assignment == assignment]
    common = [s for s in samples if s.assignment == "*" and (hostile or "hostile" not in s.tags)]
    names = {s.name for s in own}
    return own + [s for s in common if s.name not in names]



def _plain(source: str):
    return nbformat.v4.new_code_cell(source=source)


def build(sample: Sample, assignment: str, root: Path, source_dir: str = "solutions", release_dir: str = "notebooks",
          db: str = "") -> dict[str, str]:
    """Return {notebook name: file content} of this sample's submission of `assignment`."""
    spec = sample.spec
    src_folder = Path(root) / source_dir / assignment
    out = {}
    for src_path in sorted(src_folder.glob("*.ipynb")):
        nbname = src_path.stem
        subst = {"{ROOT}": str(Path(root).resolve()), "{ASSIGNMENT}": assignment, "{NOTEBOOK}": nbname, "{DB}": db}

        def fill(text: str) -> str:
            for k, v in subst.items():
                text = text.replace(k, v)
            return text

        if "raw" in spec:
            out[nbname] = fill(spec["raw"])
            continue
        source = nbformat.read(src_path, as_version=4)
        release = nbformat.read(Path(root) / release_dir / assignment / src_path.name, as_version=4)
        nb = copy.deepcopy(release)
        solutions = {meta(c)["grade_id"]: c for c in source.cells if meta(c).get("solution") and meta(c).get("grade_id")}
        stub = set(spec.get("stub", []))
        replace = {gid: fill(text) for gid, text in spec.get("replace", {}).items()}
        case = spec.get("case")
        if case is not None:
            if case.cell not in solutions:
                raise KeyError(f"case {case.path}: no solution cell {case.cell!r} in {assignment}")
            replace[case.cell] = case.cell_source(solutions[case.cell].source)
        for cell in nb.cells:
            m = meta(cell)
            gid = m.get("grade_id")
            if m.get("solution") and gid in replace:
                cell.source = replace[gid]
            elif m.get("solution") and spec.get("base") == "solution" and gid in solutions and gid not in stub:
                cell.source = strip_solution_markers(solutions[gid].source)
            edits = spec.get("edit_locked", {})
            if m.get("locked") and (gid in edits or ("*" in edits and m.get("grade"))):
                cell.source = fill(edits.get(gid, edits.get("*")))
        cells = list(nb.cells)
        for gid, sources in spec.get("before", {}).items():
            idx = next((i for i, c in enumerate(cells) if meta(c).get("grade_id") == gid), None)
            if idx is None:
                raise KeyError(f"sample {sample.name}: no cell {gid!r} in {assignment}")
            cells[idx:idx] = [_plain(fill(s)) for s in sources]
        if spec.get("before_first_test"):
            idx = next(i for i, c in enumerate(cells) if meta(c).get("grade") and not meta(c).get("solution"))
            cells[idx:idx] = [_plain(fill(s)) for s in spec["before_first_test"]]
        cells = [_plain(fill(s)) for s in spec.get("prepend", [])] + cells + [_plain(fill(s)) for s in spec.get("append", [])]
        nb.cells = cells
        out[nbname] = nbformat.writes(nb)
    return out


def write_class(dest: Path, assignments: list[str], root: Path, samples: list[Sample] | None = None,
                hostile: bool = True, db: str = "", source_dir: str = "solutions", release_dir: str = "notebooks",
                copies: int = 1) -> dict[tuple[str, str], Sample]:
    """Write every applicable sample as DEST/<student>/<assignment>/<notebook>.ipynb (nbgrader's
    layout; the student id is the sample's name, with -2, -3... for extra copies). Returns
    {(assignment, student): sample}."""
    samples = load() if samples is None else samples
    written = {}
    for a in assignments:
        for s in for_assignment(a, samples, hostile):
            for k in range(copies):
                student = s.name if k == 0 else f"{s.name}-{k + 1}"
                folder = Path(dest) / student / a
                folder.mkdir(parents=True, exist_ok=True)
                for nbname, text in build(s, a, root, source_dir, release_dir, db).items():
                    (folder / f"{nbname}.ipynb").write_text(text)
                written[(a, student)] = s
    return written


def expected_score(sample: Sample, max_score: float) -> float | None:
    """The score the sample must get; None when it is not fixed ("any", or a registry case, whose
    failed cells are checked one by one instead)."""
    if "fails" in sample.expect and "score" not in sample.expect:
        return None
    want = sample.expect.get("score")
    if want == "any":
        return None
    if want == "full":
        return max_score
    if want == "zero":
        return 0.0
    return float(want)


def main(argv=None) -> int:
    """python -m autograder.samples DEST [ASSIGNMENT ...]: write the sample class (nbgrader layout)."""
    import argparse
    import sys

    from autograder.release import REPO, assignments as all_assignments

    p = argparse.ArgumentParser(prog="python -m autograder.samples", description=main.__doc__)
    p.add_argument("dest", type=Path)
    p.add_argument("assignments", nargs="*")
    p.add_argument("--root", type=Path, default=REPO)
    p.add_argument("--no-hostile", action="store_true")
    p.add_argument("--copies", type=int, default=1)
    args = p.parse_args(argv)
    names = args.assignments or all_assignments(args.root)
    written = write_class(args.dest, names, args.root, hostile=not args.no_hostile, copies=args.copies)
    print(f"wrote {len(written)} submissions of {len(names)} assignment(s) into {args.dest}", file=sys.stderr)
    return 0

