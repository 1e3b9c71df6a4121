"""What the instructor sees: a progress bar while grading, a summary table at the end."""
from __future__ import annotations

import shutil
import sys
import time
from collections import defaultdict


class Progress:
    """A one-line progress bar on stderr when it is a terminal; one line per submission otherwise."""

    def __init__(self, total: int, done: int = 0, enabled: bool = True, stream=None):
        self.total = total
        self.done = done
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.first_done = done
        self.last = ""
        if self.enabled and done:
            self._line(f"{done} already graded (journal); grading the other {total - done}")

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + "\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def advance(self, what: str) -> None:
        self.done += 1
        self.last = what
        if not self.enabled:
            return
        if not self.tty:
            self._line(f"[{self.done}/{self.total}] {what}")
        self.draw()

    def draw(self) -> None:
        if not (self.enabled and self.tty):
            return
        width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - 50))
        frac = self.done / self.total if self.total else 1.0
        filled = int(frac * width)
        elapsed = time.monotonic() - self.start
        graded = self.done - self.first_done
        eta = (elapsed / graded * (self.total - self.done)) if graded else 0
        self.stream.write(f"\r\x1b[2Kgrading [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                          f"{elapsed:4.0f}s eta {eta:4.0f}s  {self.last[:30]}")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*[str(x) for x in r]) for r in rows]
    return "\n".join(lines)


def summary(records: dict, assignments, seconds: float, failures: list[str], skipped: list[str]) -> str:
    out = []
    students = sorted({s for (_, s) in records})
    out.append(f"\nGraded {len(records)} submission(s) of {len(students)} student(s) in {seconds:.1f} s.")
    for a in assignments:
        recs = [r for (name, _), r in records.items() if name == a.name]
        if not recs:
            out.append(f"\n{a.name}: no submissions.")
            continue
        per_cell: dict[str, list[float]] = defaultdict(list)
        maxes: dict[str, float] = {}
        for r in recs:
            for nbname, e in r["notebooks"].items():
                for c in e["cells"]:
                    per_cell[c["grade_id"]].append(c["points"])
                    maxes[c["grade_id"]] = c["max_points"]
        rows = [[gid, f"{sum(v) / len(v):.2f}", f"{maxes[gid]:g}", f"{sum(1 for x in v if x == maxes[gid])}/{len(v)}"]
                for gid, v in per_cell.items()]
        total = [r["score"] for r in recs]
        rows.append(["TOTAL", f"{sum(total) / len(total):.2f}", f"{recs[0]['max_score']:g}", ""])
        out.append(f"\n{a.name}: {len(recs)} submission(s), mean score per exercise")
        out.append(table(rows, ["graded cell", "mean", "max", "full marks"]))
    unverified = sorted({(r["assignment"], c["grade_id"]) for r in records.values() for e in r["notebooks"].values()
                         for c in e["cells"] if c.get("verified") is False})
    if unverified:
        out.append("\nGraded cells whose checks publish no evidence (the kernel's word only): "
                   + ", ".join(f"{a}/{g}" for a, g in unverified))
    hit = [[r["student"], r["assignment"], ", ".join(r["limits"]),
            "; ".join(e.get("reason", "") for e in r["notebooks"].values() if e.get("reason"))[:70]]
           for r in records.values() if r["limits"]]
    out.append("\nSubmissions that hit a limit: " + ("none" if not hit else ""))
    if hit:
        out.append(table(sorted(hit), ["student", "assignment", "limit", "what happened"]))
    flagged = [[r["student"], r["assignment"], f[:90]] for r in records.values() for f in r["flags"]]
    out.append("\nFlagged (kernel said pass, independent check disagreed; earned 0): " + ("none" if not flagged else ""))
    if flagged:
        out.append(table(sorted(flagged), ["student", "assignment", "cell: why"]))
    notes = [[r["student"], r["assignment"], n[:90]] for r in records.values() for n in r.get("notes", [])]
    if notes:
        out.append("\nNotes on cells (restored, dropped, or handing in the course's own code):")
        out.append(table(sorted(notes), ["student", "assignment", "note"]))
    if skipped:
        out.append("\nIgnored in the submissions folder: " + "; ".join(skipped[:20]))
    if failures:
        out.append("\nGrader errors (not graded, retried by the next run): " + "; ".join(failures[:20]))
    return "\n".join(out)
