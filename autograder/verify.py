"""Independent verification of each graded cell (stage: "verify"), in the grader's process, which
never runs learner code.

A graded cell earns its points only when both hold:
1. the kernel reports it passed (no error output and an "ok" reply: nbgrader's own rule), and
2. the evidence it published (plain data: what each course check used and observed, including what
   the reference peers saw on their sockets) is equal to the evidence the instructor's solution
   published for the same grade_id.

Everything a kernel says about itself can be forged by a hostile submission (an IPython hook can
hide an exception; a replaced `display_pub` can print anything). Forging condition 2 needs the right
observations for the hidden cases, which is what solving the exercise means. Where the kernel says
"passed" and the evidence disagrees, the cell earns 0 and is flagged.
"""
from __future__ import annotations

import json


def canonical(evidence: list) -> str:
    return json.dumps(evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def judge(kernel_passed: bool, evidence: list, reference: list | None) -> tuple[bool, str]:
    """Return (earns the points, flag). flag is "" or a short reason the summary shows."""
    if not kernel_passed:
        return False, ""
    if reference is None:
        return False, "no reference evidence for this cell"
    if not reference:
        # the check publishes no evidence: the kernel's word is all there is (reported as unverified)
        return (not evidence), ("" if not evidence else "evidence where the solution has none")
    if canonical(evidence) == canonical(reference):
        return True, ""
    if not evidence:
        return False, "kernel reported a pass without any evidence"
    return False, "kernel reported a pass but its evidence differs from the solution's"
