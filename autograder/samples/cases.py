"""The registry of learner implementations: one file per wrong or alternative implementation of one
exercise, next to the assignment's other samples (autograder/samples/<assignment>/).

Every case is a submission a class could hand in. It names the one solution cell it changes and the
graded cells it must fail ("none" for a correct one), and it is judged three ways from this one file:
the unit tests run the graded cells' checks on it in-process (tests/test_registry.py), the notebook
tests execute it in a real kernel, and the grader's sample class grades it
(tests/test_autograder_samples.py), where the failed cells must be exactly the ones named.

Two forms:

- `<name>.diff`, a wrong implementation: a unified diff of the one solution cell it changes (the
  cell's source without its `### BEGIN/END SOLUTION` lines), after a few `key: value` header lines:

      what: replies to the first client's address, whatever the sender
      fails: serve-sums-two-clients serve-sums-many-clients
      rule: reply-to-sender
      --- serve_sums
      +++ serve_sums
      @@ -24,3 +24,4 @@
      ...

  Line numbers are a hint: each hunk's old lines must occur in the cell, once (the nearest to the
  hint when they occur more than once). A diff that no longer applies because the solution changed
  fails the tests loudly; it never silently grades something else. `python -m autograder.samples.cases
  new` writes one from a file holding the whole wrong cell.

- `<name>.py`, an alternative implementation (another idiom: selectors, socketserver, makefile...): the
  whole cell, after `# key: value` header lines (`# what:`, `# cell:`, `# fails: none`).

Header keys: `what` (one sentence), `fails` (grade ids, or `none`), `rule` (optional: the id of the
rule in the assignment's rules.json that this case breaks, and only that rule), `cell` (.py only).

Each assignment's `rules.json` is its table of rules: for every exercise, each rule its text states
(quoted from the notebook), the check case that breaks only that rule; the registry names the wrong
implementation that shows it (`rule:`). The tests fail when a quote is not in the exercise text or
a rule has no case.
"""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUFFIXES = (".diff", ".py")
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class CaseError(ValueError):
    """A registry file that cannot be read or no longer applies to its solution cell."""


@dataclass
class Case:
    name: str
    assignment: str
    path: Path
    cell: str  # the grade_id of the solution cell it changes
    what: str
    fails: list[str]  # graded cells it must fail; [] for a correct implementation
    rule: str = ""
    diff: str = ""  # .diff cases
    source: str = ""  # .py cases: the whole cell

    @property
    def kind(self) -> str:
        return "wrong" if self.fails else "alternative"

    def cell_source(self, solution_source: str) -> str:
        """The source this case puts in its cell, given that cell's source in the instructor notebook."""
        if self.source:
            return self.source
        return apply_diff(strip_solution_markers(solution_source), self.diff, where=str(self.path))


def strip_solution_markers(source: str) -> str:
    """A solution cell as a learner would write it: the solution, without nbgrader's marker lines."""
    return "\n".join(line for line in source.splitlines() if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def _header(lines: list[str], prefix: str) -> tuple[dict[str, str], int]:
    fields, i = {}, 0
    while i < len(lines):
        line = lines[i]
        if prefix and not line.startswith(prefix):
            break
        m = re.match(r"^(what|fails|rule|cell):\s*(.*)$", line[len(prefix):].strip())
        if not m:
            break
        fields[m.group(1)] = m.group(2).strip()
        i += 1
    return fields, i


def _fails(text: str, where: Path) -> list[str]:
    if not text:
        raise CaseError(f"{where}: no 'fails:' line; name the graded cells it must fail, or 'none'")
    return [] if text == "none" else text.replace(",", " ").split()


def read_case(path: Path) -> Case:
    path = Path(path)
    text = path.read_text()
    lines = text.splitlines()
    if path.suffix == ".diff":
        fields, i = _header(lines, "")
        body = lines[i:]
        while body and not body[0].strip():
            body = body[1:]
        if len(body) < 2 or not body[0].startswith("--- ") or not body[1].startswith("+++ "):
            raise CaseError(f"{path}: after the header lines, a diff must start with '--- CELL' and '+++ CELL'")
        cell = body[0][4:].strip()
        return Case(path.stem, path.parent.name, path, cell, fields.get("what", ""), _fails(fields.get("fails", ""), path),
                    fields.get("rule", ""), diff="\n".join(body) + "\n")
    if path.suffix == ".py":
        fields, i = _header(lines, "#")
        if not fields.get("cell"):
            raise CaseError(f"{path}: no '# cell:' line naming the solution cell it replaces")
        source = "\n".join(lines[i:]).strip("\n") + "\n"
        return Case(path.stem, path.parent.name, path, fields["cell"], fields.get("what", ""),
                    _fails(fields.get("fails", ""), path), fields.get("rule", ""), source=source)
    raise CaseError(f"{path}: a registry case is a .diff or a .py file")


def load_cases(folder: Path = HERE, assignment: str | None = None) -> list[Case]:
    """Every registry case (of `assignment`, or of all assignments), sorted by assignment and name."""
    out = []
    for path in sorted(Path(folder).glob("*/*")):
        if path.suffix in SUFFIXES and path.name != "__init__.py" and path.parent.name not in ("common", "__pycache__"):
            if assignment is None or path.parent.name == assignment:
                out.append(read_case(path))
    return out


# ----------------------------------------------------------------------------------------------
# Unified diffs of one cell
# ----------------------------------------------------------------------------------------------
def make_diff(cell: str, old: str, new: str) -> str:
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), fromfile=cell, tofile=cell, lineterm="", n=2)
    return "\n".join(lines) + "\n"


def _hunks(diff: str, where: str):
    lines = diff.splitlines()
    i = 2  # after --- and +++
    if not any(line.startswith("@@") for line in lines):
        raise CaseError(f"{where}: the diff has no hunk ('@@ ... @@' line)")
    while i < len(lines):
        m = HUNK.match(lines[i])
        if not m:
            raise CaseError(f"{where}: line {i + 1} of the diff should start a hunk: {lines[i]!r}")
        start = int(m.group(1))
        i += 1
        old, new = [], []
        while i < len(lines) and not lines[i].startswith("@@"):
            line = lines[i]
            tag, rest = (line[:1], line[1:]) if line else (" ", "")
            if tag == " ":
                old.append(rest)
                new.append(rest)
            elif tag == "-":
                old.append(rest)
            elif tag == "+":
                new.append(rest)
            elif tag == "\\":
                pass  # "\ No newline at end of file"
            else:
                raise CaseError(f"{where}: diff line {i + 1} starts with {tag!r}; expected ' ', '-' or '+'")
            i += 1
        yield start, old, new


def apply_diff(source: str, diff: str, where: str = "diff") -> str:
    """Apply a unified diff of one cell to `source`; every hunk must match exactly."""
    lines = source.splitlines()
    offset = 0
    for start, old, new in _hunks(diff, where):
        hint = max(0, start - 1 + offset)
        spots = [k for k in range(len(lines) - len(old) + 1) if lines[k:k + len(old)] == old]
        if not old:
            spots = [hint]
        if not spots:
            first = next((line for line in old if line.strip()), "")
            raise CaseError(f"{where}: a hunk no longer matches its solution cell (near line {start}: {first.strip()!r}); "
                            f"the solution changed: update the case")
        k = min(spots, key=lambda s: abs(s - hint))
        lines[k:k + len(old)] = new
        offset += len(new) - len(old)
    return "\n".join(lines) + ("\n" if source.endswith("\n") else "")


# ----------------------------------------------------------------------------------------------
# The rules tables
# ----------------------------------------------------------------------------------------------
def load_rules(assignment: str, folder: Path = HERE) -> dict:
    """{exercise cell: [{"id", "quote", "check"}, ...]} from the assignment's rules.json ({} if none)."""
    path = Path(folder) / assignment / "rules.json"
    return json.loads(path.read_text()) if path.exists() else {}


def main(argv: list[str] | None = None) -> int:
    """python -m autograder.samples.cases new ASSIGNMENT CELL NAME --from FILE --what ... --fails ...:
    write the .diff of a wrong cell (FILE holds the whole cell as a learner wrote it)."""
    import argparse
    import sys

    import nbformat

    from autograder.release import REPO

    p = argparse.ArgumentParser(prog="python -m autograder.samples.cases")
    sub = p.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="write a wrong implementation's .diff from a file with the whole cell")
    new.add_argument("assignment")
    new.add_argument("cell", help="grade_id of the solution cell")
    new.add_argument("name", help="kebab-case name of the case (the sample's student id)")
    new.add_argument("--from", dest="source", type=Path, required=True)
    new.add_argument("--what", required=True)
    new.add_argument("--fails", required=True, help="graded cells it must fail, space separated, or 'none'")
    new.add_argument("--rule", default="")
    args = p.parse_args(argv)
    (nb_path,) = (REPO / "solutions" / args.assignment).glob("*.ipynb")
    nb = nbformat.read(nb_path, as_version=4)
    cells = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == args.cell]
    if not cells:
        print(f"no cell {args.cell!r} in {nb_path}", file=sys.stderr)
        return 2
    old = strip_solution_markers(cells[0].source)
    diff = make_diff(args.cell, old, args.source.read_text())
    header = f"what: {args.what}\nfails: {args.fails}\n" + (f"rule: {args.rule}\n" if args.rule else "")
    dest = HERE / args.assignment / f"{args.name}.diff"
    dest.write_text(header + diff)
    apply_diff(old, diff, str(dest))  # it must apply to what it was made from
    print(f"wrote {dest.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
