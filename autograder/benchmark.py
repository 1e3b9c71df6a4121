"""Time `python -m autograder grade` against plain serial `nbgrader autograde` on the same
submissions, and check that they give the same grades.

    python -m autograder.benchmark [--assignment 03-udp] [--submissions 8] [--jobs N]
    python -m autograder.benchmark --repeat 10 --busy     # ten gradings while the cores are busy

The submissions are a fixed, named list of distinct ones: the correct notebook, the blank release,
then the assignment's registry cases in name order (classic bugs and other idioms). Both graders start cold: the grader computes the
solution's reference evidence in the same run; both gradebooks get the assignment beforehand
(`nbgrader generate_assignment`, not timed: an instructor does it once). Prints both times and their ratio (goal on 2 cores: <= 0.25).
"""
from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder import samples as smp
from autograder.cli import default_jobs
from autograder.release import REPO, assignments, nbgrader_env


def spin(stop):  # pragma: no cover - a CPU hog for --busy
    while not stop.is_set():
        pass


def make_class(dest: Path, assignment: str, n: int) -> list[str]:
    """A fixed, named class of `n` distinct submissions: the correct one, the blank release, then
    the assignment's registry and sample cases in name order (no copies: no verdict of one
    submission can be reused for another)."""
    every = smp.for_assignment(assignment, smp.load(), hostile=False)
    first = [s for s in every if s.name in ("correct", "blank")]
    rest = sorted((s for s in every if s.name not in ("correct", "blank")), key=lambda s: s.name)
    chosen = (sorted(first, key=lambda s: s.name != "correct") + rest)[:n]
    if len(chosen) < n:
        raise SystemExit(f"{assignment} has only {len(chosen)} distinct submissions; ask for --submissions {len(chosen)} or fewer")
    written = smp.write_class(dest, [assignment], REPO, samples=chosen, hostile=False, copies=1)
    return sorted(student for (_, student) in written)


def scores(path: Path) -> dict[str, float]:
    with open(path, newline="") as f:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}


def run_nbgrader(tmp: Path, assignment: str, submitted: Path) -> tuple[float, dict[str, float]]:
    course = tmp / "nbgrader-course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    (course / "solutions").symlink_to(REPO / "solutions")
    shutil.copytree(submitted, course / "submitted")
    env = nbgrader_env()
    nbg = [sys.executable, "-m", "nbgrader"]
    subprocess.run(nbg + ["generate_assignment", assignment, "--force", "--log-level=WARN"], cwd=course, env=env,
                   check=True, capture_output=True)
    start = time.monotonic()
    proc = subprocess.run(nbg + ["autograde", assignment, "--create", "--force", "--log-level=WARN"], cwd=course,
                          env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        print(f"(nbgrader autograde exited {proc.returncode}: {proc.stderr.strip()[-300:]})", file=sys.stderr)
    subprocess.run(nbg + ["export", "--to", str(tmp / "nbgrader.csv"), "--log-level=WARN"], cwd=course, env=env,
                   check=True, capture_output=True)
    return seconds, scores(tmp / "nbgrader.csv")


def run_ours(tmp: Path, assignment: str, submitted: Path, jobs: int, tag: str = "ours") -> tuple[float, dict[str, float], str]:
    out = tmp / f"{tag}.csv"
    # the assignment is put in the gradebook beforehand, untimed, as for nbgrader (an instructor does it once)
    from autograder import gradebook as gbk

    gbk.add_assignment(REPO, "solutions", assignment, gbk.db_url(tmp / f"{tag}.db"))
    cmd = [sys.executable, "-m", "autograder", "grade", assignment, "--submitted", str(submitted), "--out", str(out),
           "--db", str(tmp / f"{tag}.db"), "--autograded", str(tmp / f"{tag}-autograded"), "--jobs", str(jobs), "--quiet"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=nbgrader_env(), capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"the grader failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, scores(out), proc.stdout


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.benchmark", description=__doc__.split("\n\n")[0])
    have = assignments()
    p.add_argument("--assignment", default="03-udp" if "03-udp" in have else (have[0] if have else None))
    p.add_argument("--submissions", type=int, default=8)
    p.add_argument("--jobs", type=int, default=default_jobs(), help="default: the grader's own default")
    p.add_argument("--repeat", type=int, default=0, help="also grade the class this many more times and compare")
    p.add_argument("--busy", action="store_true", help="keep every core busy with another process meanwhile")
    p.add_argument("--skip-nbgrader", action="store_true")
    args = p.parse_args(argv)
    stop = multiprocessing.Event()
    hogs = []
    with tempfile.TemporaryDirectory(prefix="ag-bench-") as t:
        tmp = Path(t)
        submitted = tmp / "submitted"
        students = make_class(submitted, args.assignment, args.submissions)
        print(f"{len(students)} submissions of {args.assignment} on {os.cpu_count()} cores: {', '.join(students)}")
        if args.busy:
            hogs = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 1)]
            for h in hogs:
                h.start()
            print(f"keeping {len(hogs)} cores busy with another process")
        try:
            ours_s, ours, summary = run_ours(tmp, args.assignment, submitted, args.jobs)
            print(f"python -m autograder grade --jobs {args.jobs}: {ours_s:.1f} s")
            if not args.skip_nbgrader:
                nbg_s, nbg = run_nbgrader(tmp, args.assignment, submitted)
                print(f"nbgrader autograde (serial, unsandboxed): {nbg_s:.1f} s")
                print(f"ratio: {ours_s / nbg_s:.2f} (goal <= 0.25)")
                same = {s: (ours.get(s), nbg.get(s)) for s in students if ours.get(s) != nbg.get(s)}
                print("grades equal: " + ("yes" if not same else f"NO: {same}"))
            runs = [ours]
            for i in range(args.repeat):
                s, again, _ = run_ours(tmp, args.assignment, submitted, args.jobs, tag=f"repeat{i}")
                runs.append(again)
                print(f"repeat {i + 1}: {s:.1f} s, {'same scores' if again == ours else 'DIFFERENT: ' + str(again)}")
            if args.repeat:
                print(f"identical scores in {sum(r == ours for r in runs)}/{len(runs)} runs")
            print(summary)
        finally:
            stop.set()
            for h in hogs:
                h.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
