"""Compare what the grader did with a sample submission to what the sample expects."""
from __future__ import annotations

import csv
import html
import json
import os
import subprocess
from pathlib import Path

import nbformat

from autograder.grade import hidden_lines
from autograder.samples import Sample, expected_score


def read_csv(path: Path) -> dict[tuple[str, str], dict]:
    with open(path, newline="") as f:
        return {(row["assignment"], row["student_id"]): row for row in csv.DictReader(f)}


def problems(sample: Sample, assignment: str, student: str, *, root: Path, grades: dict, journal: Path,
             autograded: Path, feedback: Path | None, source_dir: str = "solutions") -> list[str]:
    """Everything that differs from the sample's expectations (empty: as expected)."""
    exp = sample.expect
    out: list[str] = []
    row = grades.get((assignment, student))
    if row is None:
        return [f"no row for {student} in grades.csv"]
    score, max_score = float(row["score"]), float(row["max_score"])
    want = expected_score(sample, max_score)
    if want is not None and abs(score - want) > 1e-9:
        out.append(f"score {score:g}/{max_score:g}, expected {want:g}")
    rec_path = journal / assignment / f"{student}.json"
    rec = json.loads(rec_path.read_text()) if rec_path.exists() else {}
    if "fails" in exp:  # a registry case: exactly the named graded cells lose their points
        cells = [c for nb in rec.get("notebooks", {}).values() for c in nb.get("cells", [])]
        if not cells:
            out.append(f"no graded cells in the journal record {rec_path}")
        failed = {c["grade_id"] for c in cells if not c.get("passed")}
        lost = sum(c["max_points"] for c in cells if c["grade_id"] in exp["fails"])
        if failed != set(exp["fails"]):
            why = {c["grade_id"]: c.get("message", "")[:160] for c in cells if c["grade_id"] in failed - set(exp["fails"])}
            out.append(f"failed cells {sorted(failed) or 'none'}, expected {sorted(exp['fails']) or 'none'}"
                       + (f" (unexpected: {why})" if why else ""))
        elif abs(score - (max_score - lost)) > 1e-9:
            out.append(f"score {score:g}/{max_score:g}, expected {max_score - lost:g}")
    limits = set(rec.get("limits", []))
    # "limits_as_root": limits only a grader running as root can attribute (a uid per sandbox)
    expected_limits = exp.get("limits_as_root") if os.geteuid() == 0 and "limits_as_root" in exp else exp.get("limits")
    if expected_limits is not None:
        for alt in expected_limits:
            if not limits & set(alt.split("|")):
                out.append(f"limits hit {sorted(limits)}, expected {alt}")
        if not expected_limits and limits:
            out.append(f"hit limits {sorted(limits)}, expected none")
    if exp.get("flagged") and not rec.get("flags"):
        out.append("not flagged, expected a flag")
    if exp.get("note") and not any(exp["note"] in n for n in rec.get("notes", [])):
        out.append(f"no note containing {exp['note']!r} in {rec.get('notes')}")
    subst = {"{ROOT}": str(Path(root).resolve()), "{ASSIGNMENT}": assignment}
    for p in exp.get("no_files", []):
        for k, v in subst.items():
            p = p.replace(k, v)
        if Path(p).exists():
            out.append(f"{p} exists: the submission wrote outside its sandbox")
    if exp.get("no_process"):
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        alive = [line for line in ps.splitlines() if exp["no_process"] in line and "ps -eo" not in line]
        if alive:
            out.append(f"processes survived grading: {alive[:3]}")
    learner_text = ""
    for nb_path in sorted((autograded / student / assignment).glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if cell.get("cell_type") == "code" and not cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                for o in cell.get("outputs", []):
                    learner_text += str(o.get("text", ""))  # stream chunks join up as printed
                    if o.get("data") or o.get("evalue"):
                        learner_text += "\n" + json.dumps(o.get("data", {})) + str(o.get("evalue", "")) + "\n"
    if exp.get("output_contains") and exp["output_contains"] not in learner_text:
        out.append(f"no output shows {exp['output_contains']!r}")
    if exp.get("hidden_not_leaked"):
        fb_text = ""
        if feedback is not None:
            fb_text = "".join(html.unescape(p.read_text()) for p in (feedback / student / assignment).glob("*.html"))
        for src in sorted((Path(root) / source_dir / assignment).glob("*.ipynb")):
            for line in hidden_lines(nbformat.read(src, as_version=4)):
                if line in learner_text:
                    out.append(f"hidden test line printed by learner code: {line[:60]!r}")
                    break
                if line in fb_text:
                    out.append(f"hidden test line in the feedback: {line[:60]!r}")
                    break
    return out
