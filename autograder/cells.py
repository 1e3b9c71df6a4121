"""What the grader reads in a notebook's cells: nbgrader's metadata and the course's evidence.

One home for the helpers that `assemble`, `grade`, `kernel` and `execute` share. The evidence's
MIME type is the course's own (`course.checks.EVIDENCE_MIME`, which publishes it in the kernel).
"""
from __future__ import annotations

from course.checks import EVIDENCE_MIME

__all__ = ["EVIDENCE_MIME", "evidence_in", "is_fixed", "is_graded_test", "meta"]


def meta(cell) -> dict:
    """The cell's nbgrader metadata ({} when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_graded_test(cell) -> bool:
    """An nbgrader autograded test cell: `grade: true`, `solution: false`, code."""
    m = meta(cell)
    return bool(m.get("grade")) and not m.get("solution") and cell.get("cell_type") == "code"


def is_fixed(cell) -> bool:
    """Cells whose content the grader takes from the source: locked or graded tests."""
    m = meta(cell)
    return bool(m.get("locked")) or (bool(m.get("grade")) and not m.get("solution"))


def evidence_in(out: dict):
    """The evidence an nbformat output carries, or None when it is no evidence."""
    if out.get("output_type") == "display_data" and EVIDENCE_MIME in out.get("data", {}):
        return out["data"][EVIDENCE_MIME]
    return None
