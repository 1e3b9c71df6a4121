"""`python -m autograder grade ASSIGNMENT [...] --submitted DIR --out grades.csv [--jobs N] [--feedback DIR]`

Grades every submission found in DIR, each in its own sandboxed kernel, several at once, and
writes nbgrader's gradebook, nbgrader's CSV export and (optionally) safe per-student feedback.

The stages and their order are `autograder.stages`; this module turns the command line into its
settings and its outcome into the exit status: 0 when every submission got a grade (0 is a grade),
2 when the grader itself could not run (the message says why), 3 when the grader failed on some
submissions (they are retried by the next run), 130 when interrupted (the next run finishes the
class).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder import stages
from autograder.stages import Fatal, course_config, load_assignment  # noqa: F401 (their old home)


# A kernel under grading mostly waits (on sockets, on the checks' deadlines), so more kernels than
# cores run at once at little cost; tests/load_check.py holds every verdict steady at 21 kernels per
# core (42 on 2 cores), and the default keeps well inside that.
JOBS_PER_CORE = 4


def default_jobs() -> int:
    return JOBS_PER_CORE * (os.cpu_count() or 1)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder", description="Grade a class of notebooks safely with nbgrader underneath.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade every submission of the given assignments")
    g.add_argument("assignments", nargs="+", metavar="ASSIGNMENT")
    g.add_argument("--submitted", required=True, type=Path, help="DIR/<student>/<assignment>/<notebook>.ipynb, or LMS zips/notebooks")
    g.add_argument("--out", required=True, type=Path, help="CSV file to write (nbgrader's export columns)")
    g.add_argument("--jobs", type=int, default=default_jobs(),
                   help=f"submissions graded at once (default: {JOBS_PER_CORE} per core, {default_jobs()} here)")
    g.add_argument("--feedback", type=Path, help="write per-student HTML feedback into this folder")
    g.add_argument("--root", type=Path, help="course folder holding nbgrader_config.py (default: this folder, else the repo)")
    g.add_argument("--db", type=Path, help="gradebook file (default: ROOT/gradebook.db)")
    g.add_argument("--autograded", type=Path, help="where graded notebooks go (default: ROOT/autograded)")
    g.add_argument("--state", type=Path, help="journal and caches (default: AUTOGRADED/.grader)")
    g.add_argument("--no-sandbox", action="store_true", help="run kernels without bwrap: ONLY for trusted notebooks")
    g.add_argument("--cell-timeout", type=float, help="upper bound of one cell's time in s (default: nbgrader_config's ExecutePreprocessor.timeout)")
    g.add_argument("--wall", type=float, help="seconds for a whole submission (default: 2.5x the solution's time + 15, at least 30)")
    g.add_argument("--memory-mb", type=int, default=2048, help="address-space limit of the kernel in MB (default 2048)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return grade(args)
    except Fatal as exc:
        print(f"autograder: cannot grade: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nautograder: interrupted; run the same command again to finish the class (finished grades are kept)",
              file=sys.stderr)
        return 130


def grade(args) -> int:
    """The command line -> the run's settings; the run's outcome -> the exit status."""
    run = stages.autograde(stages.Settings(
        assignments=args.assignments, submitted=args.submitted, out=args.out, jobs=args.jobs, feedback=args.feedback,
        root=args.root, db=args.db, autograded=args.autograded, state=args.state, sandboxed=not args.no_sandbox,
        cell_timeout=args.cell_timeout, wall=args.wall, memory_mb=args.memory_mb, progress=not args.quiet))
    return exit_status(run, args.out)


def exit_status(run: stages.Run, out) -> int:
    if run.broken:
        for name, why in run.broken.items():
            print(f"autograder: {name} was not graded (left out of {out}): {why}", file=sys.stderr)
        return 2
    if run.failures:
        print(f"autograder: the grader failed on {len(run.failures)} submission(s); run again to retry them:",
              file=sys.stderr)
        for f in run.failures:
            print(f"  {f}", file=sys.stderr)
        return 3
    return 0
