"""`python -m autograder grade ASSIGNMENT [...] --submitted DIR --out grades.csv [--jobs N] [--feedback DIR]`

Grades every submission found in DIR, each in its own sandboxed kernel, several at once, and
writes nbgrader's gradebook, nbgrader's CSV export and (optionally) safe per-student feedback.

Exit status: 0 when every submission got a grade (0 is a grade), 2 when the grader itself could not
run (the message says why), 3 when the grader failed on some submissions (they are retried by the
next run), 130 when interrupted (the next run finishes the class).
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import queue
import shutil
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from autograder import collect as col
from autograder import feedback as fb
from autograder import gradebook as gbk
from autograder import grade as gr
from autograder import report
from autograder import sandbox as sb
from autograder.release import REPO, past_checksums


class Fatal(Exception):
    """The grader cannot run: print the message, exit 2."""


def course_config(root: Path) -> dict:
    from traitlets.config.loader import PyFileConfigLoader

    cfg_file = root / "nbgrader_config.py"
    if not cfg_file.exists():
        raise Fatal(f"{root} has no nbgrader_config.py; run from the course folder or pass --root")
    c = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    cd = c.get("CourseDirectory", {})
    ep = c.get("ExecutePreprocessor", {})
    return {
        "source": str(cd.get("source_directory", "source")),
        "release": str(cd.get("release_directory", "release")),
        "timeout": float(ep.get("timeout", 30) or 30),
    }


def load_assignment(root: Path, cfg: dict, name: str) -> gr.Assignment:
    if not col.STUDENT_RE.match(name) or "/" in name:
        raise Fatal(f"{name!r} is not an assignment name")
    src = root / cfg["source"] / name
    nbs = sorted(src.glob("*.ipynb")) if src.is_dir() else []
    if not nbs:
        have = sorted(p.name for p in (root / cfg["source"]).iterdir() if p.is_dir()) if (root / cfg["source"]).is_dir() else []
        raise Fatal(f"no assignment {name!r}: {src} holds no notebook (assignments: {', '.join(have) or 'none'})")
    rel = root / cfg["release"] / name
    return gr.Assignment(name=name, source={p.stem: p for p in nbs},
                         release={p.stem: (rel / p.name if (rel / p.name).exists() else None) for p in nbs},
                         release_dir=rel if rel.is_dir() else None, past_checksums=past_checksums(name, root))


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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder", description="Grade a class of notebooks safely with nbgrader underneath.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade every submission of the given assignments")
    g.add_argument("assignments", nargs="+", metavar="ASSIGNMENT")
    g.add_argument("--submitted", required=True, type=Path, help="DIR/<student>/<assignment>/<notebook>.ipynb, or LMS zips/notebooks")
    g.add_argument("--out", required=True, type=Path, help="CSV file to write (nbgrader's export columns)")
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once (default: number of cores)")
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
    # nbgrader runs `alembic` from PATH when it opens a gradebook: make the venv's bin findable
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    root = (args.root or (Path.cwd() if (Path.cwd() / "nbgrader_config.py").exists() else REPO)).resolve()
    cfg = course_config(root)
    if args.jobs < 1:
        raise Fatal("--jobs must be at least 1")
    if args.no_sandbox:
        print("autograder: WARNING: --no-sandbox: kernels run unconfined as this user; grade only notebooks you trust",
              file=sys.stderr)
    else:
        try:
            sb.check_available()
        except sb.SandboxUnavailable as exc:
            raise Fatal(f"{exc}. Refusing to run untrusted submissions without a sandbox.") from None
    assignments = [load_assignment(root, cfg, a) for a in dict.fromkeys(args.assignments)]
    autograded = (args.autograded or root / "autograded").resolve()
    state = (args.state or autograded / ".grader").resolve()
    db = (args.db or root / "gradebook.db").resolve()
    url = gbk.db_url(db)
    limits = sb.Limits(memory=args.memory_mb * 1024**2, cell_timeout=args.cell_timeout or cfg["timeout"], wall=args.wall)
    options = gr.Options(limits=limits, sandboxed=not args.no_sandbox, state=state)
    state.mkdir(parents=True, exist_ok=True)
    lock = open(state / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Fatal(f"another grader is running with the state folder {state}; wait for it or pass another --state") from None
    if not args.no_sandbox:
        from autograder import cgroup

        cgroup.remove_stale()  # control groups of graders that were killed
    runs = state / "runs"
    if runs.exists():  # working copies left by a grader that was killed
        shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True, exist_ok=True)
    os.chmod(runs, 0o711)

    # the gradebook knows each assignment (nbgrader's generate_assignment, with the course config);
    # done in the background while the first kernels run: no grade is stored before it is ready
    import nbformat

    prep_error: list[str] = []

    def prepare_gradebook() -> None:
        try:
            _prepare_gradebook()
        except Exception as exc:  # reported by gradebook_ready(), in the main thread
            prep_error.append(f"cannot prepare the gradebook {db}: {type(exc).__name__}: {exc}")

    def _prepare_gradebook() -> None:
        for a in assignments:
            cells = {}
            for nbname, path in a.source.items():
                nb = nbformat.read(path, as_version=4)
                cells[nbname] = {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"].get("points", 0))
                                 for c in nb.cells if gr.asm.meta(c).get("grade")}
            if not gbk.assignment_is_current(url, a.name, cells):
                gbk.add_assignment(root, cfg["source"], a.name, url)
                if not gbk.assignment_is_current(url, a.name, cells):
                    raise RuntimeError(f"nbgrader generate_assignment {a.name} did not put it in the gradebook")

    prep = threading.Thread(target=prepare_gradebook, name="gradebook", daemon=True)
    prep.start()

    def gradebook_ready() -> None:
        prep.join()
        if prep_error:
            raise Fatal(prep_error[0])

    staging = state / "staging"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        collected = col.collect(args.submitted, {a.name: a.notebooks for a in assignments}, staging)
    except FileNotFoundError as exc:
        raise Fatal(str(exc)) from None
    for s in collected.skipped:
        print(f"autograder: skipped {s}", file=sys.stderr)
    subs = collected.submissions
    by_name = {a.name: a for a in assignments}

    # what is already graded (journal) is stored again (idempotent) and not re-run
    ref_keys = {}
    records: dict[tuple[str, str], dict] = {}
    pending = []
    for s in subs:
        j = read_journal(journal_path(state, s.assignment, s.student))
        if j and j.get("version") == gr.VERSION and j.get("digest") == gr.submission_digest(s.files) \
                and j.get("ref") == reference_key(by_name[s.assignment], options, ref_keys):
            records[(s.assignment, s.student)] = j
        else:
            pending.append(s)
    if records:
        gradebook_ready()
    for s in subs:
        if (s.assignment, s.student) in records:
            gbk.store(url, records[(s.assignment, s.student)], s.timestamp)

    progress = report.Progress(len(subs), done=len(records), enabled=not args.quiet)
    slots: queue.Queue[int] = queue.Queue()
    for i in range(args.jobs + 2):
        slots.put(i)
    failures: list[str] = []
    broken: dict[str, str] = {}  # assignment -> why it cannot be graded (its solution fails)
    started = time.monotonic()

    def with_slot(fn, *a):
        slot = slots.get()
        try:
            return fn(*a, slot)
        finally:
            slots.put(slot)

    unstored: list[tuple[dict, str | None]] = []

    def store_pending() -> None:
        while unstored:
            record, ts = unstored.pop(0)
            gbk.store(url, record, ts)

    refs: dict[str, Future] = {}
    # The solutions run in a lane of their own, one at a time, beside the --jobs submissions: a
    # submission's kernel starts and runs without waiting for its reference (only its verdicts wait),
    # and the kernels mostly wait on sockets and timers, so one more kernel costs little CPU.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference") as ref_pool, \
            ThreadPoolExecutor(max_workers=args.jobs, thread_name_prefix="grader") as pool:
        needed = sorted({s.assignment for s in pending})
        for name in needed:
            refs[name] = ref_pool.submit(with_slot, lambda slot, a=by_name[name]: gr.reference(a, options, slot))

        def judge(s: col.Submission, executed: gr.Executed) -> dict:
            record = gr.judge_submission(executed, refs[s.assignment].result(), autograded)
            write_journal(journal_path(state, s.assignment, s.student), record)
            return record

        def job(s: col.Submission, slot: int) -> dict | Future:
            executed = gr.execute_submission(by_name[s.assignment], s.student, s.files, refs[s.assignment], options,
                                             slot, warm)
            if refs[s.assignment].done():
                return judge(s, executed)
            # the solution still runs: its verdicts wait for it in a thread of their own, and this
            # worker goes on with the next submission
            return waiting.submit(judge, s, executed)

        waiting = ThreadPoolExecutor(max_workers=max(1, len(pending)), thread_name_prefix="verdicts")
        # kernels for the next submissions start while the current ones run (in queue order)
        warm = gr.WarmKernels(options, [by_name[s.assignment].release_dir for s in pending
                                        for _ in by_name[s.assignment].notebooks], ahead=args.jobs, slot=args.jobs + 2)
        futures = {pool.submit(with_slot, lambda slot, s=s: job(s, slot)): s for s in pending}
        try:
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in done:
                    s = futures[f]
                    try:
                        record = f.result()
                        if isinstance(record, Future):  # verdicts still to come
                            futures[record] = s
                            remaining.add(record)
                            continue
                    except gr.GraderError as exc:
                        if s.assignment not in broken:
                            broken[s.assignment] = str(exc)
                            print(f"autograder: cannot grade {s.assignment}: {exc}", file=sys.stderr)
                        progress.advance(f"{s.student} {s.assignment}: not graded")
                        continue
                    except Exception as exc:
                        failures.append(f"{s.student}/{s.assignment}: {type(exc).__name__}: {exc}")
                        traceback.print_exc(file=sys.stderr)
                        progress.advance(f"{s.student} {s.assignment}: grader error")
                        continue
                    records[(s.assignment, s.student)] = record
                    unstored.append((record, s.timestamp))
                    if not prep.is_alive():
                        gradebook_ready()
                        store_pending()
                    progress.advance(f"{s.student} {s.assignment} {record['score']:g}/{record['max_score']:g}")
                progress.draw()
        except BaseException:
            for f in [*futures, *refs.values()]:
                f.cancel()
            raise
        finally:
            waiting.shutdown(wait=False, cancel_futures=True)
            warm.close()
    progress.finish()
    gradebook_ready()
    store_pending()

    students = sorted({s.student for s in subs if s.assignment not in broken})
    gbk.export(url, args.out, [a.name for a in assignments if a.name not in broken], students)
    if args.feedback:
        folders = {(s.assignment, s.student): next((f.parent for f in s.files.values() if f is not None), None) for s in subs}
        for r in records.values():
            fb.write(r, args.feedback, folders.get((r["assignment"], r["student"])))
    print(report.summary(records, assignments, time.monotonic() - started, failures, collected.skipped))
    if broken:
        for name, why in broken.items():
            print(f"autograder: {name} was not graded (left out of {args.out}): {why}", file=sys.stderr)
        return 2
    if failures:
        print(f"autograder: the grader failed on {len(failures)} submission(s); run again to retry them:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 3
    return 0


def reference_key(a: gr.Assignment, options: gr.Options, cache: dict) -> str:
    if a.name not in cache:
        cache[a.name] = gr.reference_key(a, options)
    return cache[a.name]
