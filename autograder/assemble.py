"""Build the notebook that is executed for a submission (nbgrader's OverwriteCells, stricter).

- Locked and graded test cells come from the instructor's source notebook (solutions/), whatever
  the submission holds in their place: an edited locked cell is restored, and noted when its
  checksum differs from the released one (nbgrader's `compute_checksum`).
- Solution cells keep the learner's code, with the source's nbgrader metadata (points and ids
  cannot be edited).
- Cells that claim nbgrader metadata with an id the source does not have are dropped (a learner
  cannot add graded cells); duplicates of a graded cell are dropped.
- Graded or locked cells the learner deleted are put back after the cell that precedes them in the
  source.
- Plain cells (no nbgrader metadata) stay where the learner put them.
"""
from __future__ import annotations

import copy

import nbformat
from nbgrader import utils as nbu

from autograder.cells import is_fixed, is_graded_test, meta  # noqa: F401 (asm.meta, asm.is_graded_test: their old names)



def clean(cell):
    c = copy.deepcopy(cell)
    if c.get("cell_type") == "code":
        c["outputs"] = []
        c["execution_count"] = None
    return c


def assemble(source_nb, submitted_nb, release_nb=None, past: dict[str, list[str]] | None = None
             ) -> tuple[nbformat.NotebookNode, list[str]]:
    """Return (notebook to execute, notes about what was restored or dropped).

    `past` ({grade_id: [checksums]}) holds the checksums of that notebook's locked cells in earlier
    releases: a learner who fetched an earlier release (a class in progress when a check's comment
    changed) has not edited a cell that matches any release's version of it."""
    notes: list[str] = []
    src_cells = [c for c in source_nb.cells]
    src_by_id = {meta(c)["grade_id"]: c for c in src_cells if meta(c).get("grade_id")}
    order = [meta(c)["grade_id"] for c in src_cells if meta(c).get("grade_id")]
    released = {}
    if release_nb is not None:
        released = {meta(c).get("grade_id"): meta(c).get("checksum") for c in release_nb.cells if meta(c).get("grade_id")}
    out = []
    seen: set[str] = set()
    for cell in submitted_nb.cells:
        m = meta(cell)
        gid = m.get("grade_id")
        if cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        if gid is not None and gid in src_by_id:
            if gid in seen:
                notes.append(f"dropped a duplicate of cell {gid}")
                continue
            seen.add(gid)
            src = src_by_id[gid]
            if is_fixed(src):
                want = released.get(gid)
                if want:
                    try:
                        got = nbu.compute_checksum(_as_release_checked(cell, src))
                    except Exception:
                        got = None
                    if got != want and got not in (past or {}).get(gid, ()):
                        notes.append(f"locked cell {gid} was edited; restored from the source")
                out.append(clean(src))
            else:
                c = nbformat.v4.new_code_cell(source=str(cell.get("source", ""))) if src.get("cell_type") == "code" \
                    else nbformat.v4.new_markdown_cell(source=str(cell.get("source", "")))
                c.metadata["nbgrader"] = copy.deepcopy(dict(src.metadata["nbgrader"]))
                out.append(c)
        elif m:
            if m.get("grade") or m.get("locked") or m.get("solution") or gid:
                notes.append(f"dropped a cell with nbgrader metadata unknown to the source ({str(gid)[:40]!r})")
                continue
            out.append(clean(cell))
        else:
            c = clean(cell)
            c.get("metadata", {}).pop("nbgrader", None)
            out.append(c)
    # put back deleted graded/locked cells after their predecessor in the source
    for i, gid in enumerate(order):
        if gid in seen or not (is_fixed(src_by_id[gid]) or meta(src_by_id[gid]).get("solution")):
            continue
        src = src_by_id[gid]
        if is_graded_test(src) or meta(src).get("solution"):
            notes.append(f"cell {gid} was missing from the submission; put back")
        if meta(src).get("solution"):
            # a deleted solution cell: the learner's answer is the release's stub
            c = nbformat.v4.new_code_cell(source="raise NotImplementedError()")
            c.metadata["nbgrader"] = copy.deepcopy(dict(src.metadata["nbgrader"]))
        else:
            c = clean(src)
        pos = len(out)
        for prev in reversed(order[:i]):
            idx = next((k for k, x in enumerate(out) if meta(x).get("grade_id") == prev), None)
            if idx is not None:
                pos = idx + 1
                break
        else:
            pos = 0 if i == 0 else len(out)
        out.insert(pos, c)
        seen.add(gid)
    nb = nbformat.v4.new_notebook()
    nb.metadata = copy.deepcopy(source_nb.metadata)
    nb.cells = out
    return nb, notes


def _as_release_checked(cell, src):
    """The submitted cell with the metadata nbgrader's checksum covers taken from the cell itself."""
    c = copy.deepcopy(cell)
    c.setdefault("metadata", {}).setdefault("nbgrader", {})
    return c
