"""The reference: the instructor's solution, run once per assignment in the same sandbox as the
submissions (the grader's stage before any verdict). Its evidence decides each graded cell's
verdict (`verify`), its times set each cell's timeout and the submission's wall clock (`grade`).
Cached in the state folder under a digest of the solution notebooks, the course package, the
grader's VERSION and whether it ran sandboxed.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import nbformat

from autograder import assemble as asm
from autograder import sandbox as sb
from autograder.grade import Assignment, GraderError, Options
from autograder.journal import VERSION
from autograder.runner import run_notebook


def digest_files(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(map(Path, paths)):
        h.update(str(p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def course_digest() -> str:
    pkg = Path(sb.course_package())
    return digest_files([p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts])


def reference_key(assignment: Assignment, options: Options) -> str:
    return hashlib.sha256((digest_files(assignment.source.values()) + course_digest() + VERSION
                           + str(options.sandboxed)).encode()).hexdigest()[:16]


def reference(assignment: Assignment, options: Options, slot: int) -> dict:
    """Evidence, pass/fail and seconds of every graded cell of the solution, cached in the state
    folder under a digest of the solution notebooks and the course package."""
    key = reference_key(assignment, options)
    cache = options.state / "reference" / f"{assignment.name}-{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    try:
        out = _reference_once(assignment, options, slot, key)
    except GraderError:
        out = _reference_once(assignment, options, slot, key)  # once more: a loaded machine can fail a check
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, cache)
    return out


def _reference_once(assignment: Assignment, options: Options, slot: int, key: str) -> dict:
    out = {"key": key, "notebooks": {}}
    for nbname, path in assignment.source.items():
        nb = nbformat.read(path, as_version=4)
        lim = options.limits
        run = run_notebook(nb, options=options, slot=slot, timeout_of=lambda i, c: lim.cell_timeout,
                           wall=lim.wall or 900, release_dir=assignment.release_dir, runs_root=options.state / "runs")
        if run.stopped:
            raise GraderError(f"the instructor's solution {path} could not be run: {run.stopped.reason}")
        cells = {}
        seconds = {}
        for i, cell in enumerate(run.nb.cells):
            gid = asm.meta(cell).get("grade_id")
            r = run.runs.get(i)
            if gid and r is not None:
                seconds[gid] = r.seconds
            if gid and asm.is_graded_test(cell):
                if r is None or r.error or r.status != "ok":
                    raise GraderError(f"the instructor's solution fails its own graded cell {gid!r} in {path}: "
                                      f"{(r.error if r else 'did not run')[:300]}")
                cells[gid] = r.evidence
        out["notebooks"][nbname] = {"evidence": cells, "seconds": seconds, "total": run.seconds}
    return out
