"""The journal: one JSON record per graded submission, written atomically in
`STATE/journal/<assignment>/<student>.json`.

A record is the submission's grade (every graded cell's points, verdict and message, the limits it
hit, the flags and notes) with what it was graded from: the grader's `VERSION`, the `digest` of the
submitted files and the key of the solution's reference (`ref`). A later run takes a record whose
three still match instead of grading that submission again (`is_current`), and stores it in the
gradebook again (idempotent); any other record is graded anew.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Callable

VERSION = "1"  # bump when a change of the grader changes grades: journals of older versions are redone
MAX_NOTEBOOK_BYTES = 20 * 1024**2  # the most of a submitted notebook the grader reads (and digests)


def journal_path(state: Path, assignment: str, student: str) -> Path:
    return state / "journal" / assignment / f"{student}.json"


def write_journal(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_journal(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_current(record: dict | None, digest: Callable[[], str], ref: Callable[[], str]) -> bool:
    """Whether `record` still holds the grade: same grader version, same files (`digest()`), same
    solution and course (`ref()`). The two are asked only as far as needed (both read files)."""
    return bool(record and record.get("version") == VERSION and record.get("digest") == digest()
                and record.get("ref") == ref())


def submission_digest(files: dict[str, Path | None]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        p = files[name]
        h.update(name.encode())
        if p is not None:
            try:
                h.update(p.read_bytes()[:MAX_NOTEBOOK_BYTES + 1])
            except OSError:
                h.update(b"(unreadable)")
    return h.hexdigest()


def new_record(assignment: str, student: str, digest: str) -> dict:
    """A submission's record before its notebooks run (no verdicts, no `ref` yet)."""
    return {"assignment": assignment, "student": student, "version": VERSION, "ref": None,
            "digest": digest, "notebooks": {}, "limits": [], "flags": [], "notes": []}


def new_notebook_entry() -> dict:
    return {"cells": [], "notes": [], "limit": "", "reason": ""}


def cell_record(m: dict, ok: bool, kernel_passed: bool, flag: str, message: str, seconds: float) -> dict:
    pts = float(m.get("points", 0))
    return {"grade_id": m["grade_id"], "max_points": pts, "points": pts if ok else 0.0, "passed": ok,
            "kernel_passed": kernel_passed, "flag": flag, "message": message, "seconds": round(seconds, 3)}


def close_record(result: dict, ref_key: str) -> dict:
    """The record once every verdict is in: the reference's key, the limits (each once) and the totals."""
    result["ref"] = ref_key
    result["limits"] = sorted(set(x for x in result["limits"] if x))
    result["score"] = sum(c["points"] for e in result["notebooks"].values() for c in e["cells"])
    result["max_score"] = sum(c["max_points"] for e in result["notebooks"].values() for c in e["cells"])
    return result
