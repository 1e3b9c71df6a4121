"""The load check: verdicts must not change on a busy machine (.ci/run runs it after `make test`).

A JupyterHub host runs many learners' kernels at once, and the grader runs more kernels than cores.
This executes every solution notebook COPIES times at once (7 x 6 = 42 kernels on a 2-core machine),
ROUNDS times in a row, and every registry case (autograder/samples/cases.py) at the same load, and
fails if any solution loses a graded cell or any case fails other cells than the ones it names:
a loaded machine may make a check slower, never change its verdict.

    .venv/bin/python tests/load_check.py [--copies 6] [--rounds 2] [--no-cases] [--only 07]
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from autograder.execute import execute  # noqa: E402
from autograder.release import assignments  # noqa: E402
from autograder.samples.cases import load_cases  # noqa: E402
from notebook_cases import solution_of  # noqa: E402
from registry_cases import case_replace  # noqa: E402


def run(job: tuple) -> tuple[str, set[str], set[str], dict[str, str], float]:
    label, assignment, replace, expected = job
    start = time.monotonic()
    try:
        _, results = execute(solution_of(assignment), replace=replace, timeout=120, startup_timeout=300)
        failed = {r.grade_id for r in results if not r.passed}
        why = {r.grade_id: r.error[:300] for r in results if not r.passed}
    except Exception as exc:  # noqa: BLE001 - a kernel that could not start is a failure too
        failed, why = {"<kernel>"}, {"<kernel>": f"{type(exc).__name__}: {exc}"[:300]}
    return label, failed, expected, why, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--copies", type=int, default=6, help="copies of each solution at once (default 6)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of solutions in a row (default 2)")
    p.add_argument("--no-cases", action="store_true", help="leave out the registry cases")
    p.add_argument("--only", default="", help="assignments whose name starts with this")
    args = p.parse_args(argv)
    names = [a for a in assignments() if a.startswith(args.only)]
    width = args.copies * len(names)
    bad = []
    runs = 0
    for rnd in range(1, args.rounds + 1):
        jobs = [(f"round {rnd} {a} copy {k + 1}", a, None, set()) for k in range(args.copies) for a in names]
        if rnd == 1 and not args.no_cases:
            # the cases queue behind the first round, so they run while ~`width` kernels are busy
            jobs += [(f"case {c.assignment}/{c.name}", c.assignment, case_replace(c), set(c.fails))
                     for c in load_cases() if c.assignment in names]
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=width) as pool:
            for label, failed, expected, why, seconds in pool.map(run, jobs):
                runs += 1
                if failed != expected:
                    bad.append(label)
                    print(f"WRONG VERDICT under load: {label}: failed {sorted(failed) or 'none'}, "
                          f"expected {sorted(expected) or 'none'} ({seconds:.0f} s): {why}", flush=True)
        print(f"round {rnd}: {len(jobs)} notebooks, {width} kernels at once, {time.monotonic() - start:.0f} s", flush=True)
    print(f"load check: {runs} notebook runs, {len(bad)} with a verdict that differs from an idle machine's")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
