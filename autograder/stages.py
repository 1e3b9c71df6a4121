"""The grading run's stages, in order (nbgrader's `autograde_preprocessors`, for a whole class).

`autograde(settings)` opens the run (checks, folders, the state lock) and passes it through
`STAGES`, the stage order written once:

1. `start_gradebook`: nbgrader's gradebook learns each assignment, in a thread of its own (no grade
   is stored before it is ready);
2. `collect_submissions`: the submissions found in the submitted folder (nbgrader's layout, LMS zips);
3. `replay_journal`: submissions whose journal record is current are stored again, not re-run;
4. `grade_submissions`: the others run in their sandboxes (`grade.execute_submission`), --jobs at
   once, the instructor's solutions in a lane of their own (`reference`), and are judged
   (`grade.judge_submission`) and journaled;
5. `store_grades`: every grade into the gradebook; `export_grades`: nbgrader's CSV export;
6. `write_feedback`, `print_summary`.

`cli.grade` turns the command line into `Settings`, and the run's outcome (`Run.broken`,
`Run.failures`) into the exit status.
"""
from __future__ import annotations

import fcntl
import os
import queue
import shutil
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from autograder import collect as col
from autograder import feedback as fb
from autograder import gradebook as gbk
from autograder import grade as gr
from autograder import journal
from autograder import reference as rf
from autograder import report
from autograder import sandbox as sb
from autograder.cells import meta
from autograder.release import REPO, past_checksums


class Fatal(Exception):
    """The grader cannot run: print the message, exit 2."""


@dataclass
class Settings:
    """What the command line asks for."""

    assignments: list[str]
    submitted: Path
    out: Path
    jobs: int = 1
    feedback: Path | None = None
    root: Path | None = None
    db: Path | None = None
    autograded: Path | None = None
    state: Path | None = None
    sandboxed: bool = True
    cell_timeout: float | None = None
    wall: float | None = None
    memory_mb: int = 2048
    progress: bool = True


@dataclass
class Run:
    """One grading run: its settings, its folders, and what the stages found and decided."""

    settings: Settings
    root: Path
    cfg: dict
    assignments: list[gr.Assignment]
    autograded: Path
    state: Path
    db: Path
    options: gr.Options
    url: str = ""  # the gradebook's
    lock: object = None  # the state folder's lock, held for the whole run
    prep: threading.Thread | None = None  # the gradebook's preparation
    prep_error: list[str] = field(default_factory=list)
    collected: col.Collected | None = None
    records: dict[tuple[str, str], dict] = field(default_factory=dict)  # (assignment, student) -> record
    pending: list[col.Submission] = field(default_factory=list)  # submissions to grade in this run
    unstored: list[tuple[dict, str | None]] = field(default_factory=list)  # graded, not yet in the gradebook
    failures: list[str] = field(default_factory=list)  # the grader failed on these (exit 3)
    broken: dict[str, str] = field(default_factory=dict)  # assignment -> why it cannot be graded (exit 2)
    started: float = field(default_factory=time.monotonic)

    @property
    def by_name(self) -> dict[str, gr.Assignment]:
        return {a.name: a for a in self.assignments}

    @property
    def submissions(self) -> list[col.Submission]:
        return self.collected.submissions


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


# ----------------------------------------------------------------------------------------------
# Opening the run
# ----------------------------------------------------------------------------------------------
def open_run(settings: Settings) -> Run:
    """Check what the run needs (the course, the sandbox tool, the assignments), resolve its
    folders and take the state folder's lock."""
    # nbgrader runs `alembic` from PATH when it opens a gradebook: make the venv's bin findable
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    root = (settings.root or (Path.cwd() if (Path.cwd() / "nbgrader_config.py").exists() else REPO)).resolve()
    cfg = course_config(root)
    if settings.jobs < 1:
        raise Fatal("--jobs must be at least 1")
    if not settings.sandboxed:
        print("autograder: WARNING: --no-sandbox: kernels run unconfined as this user; grade only notebooks you trust",
              file=sys.stderr)
    else:
        try:
            sb.check_available()
        except sb.SandboxUnavailable as exc:
            raise Fatal(f"{exc}. Refusing to run untrusted submissions without a sandbox.") from None
    sb.use_course(root)
    problem = sb.kernel_course_check()
    if problem:
        raise Fatal(problem)
    assignments = [load_assignment(root, cfg, a) for a in dict.fromkeys(settings.assignments)]
    autograded = (settings.autograded or root / "autograded").resolve()
    state = (settings.state or autograded / ".grader").resolve()
    db = (settings.db or root / "gradebook.db").resolve()
    limits = sb.Limits(memory=settings.memory_mb * 1024**2, cell_timeout=settings.cell_timeout or cfg["timeout"],
                       wall=settings.wall)
    options = gr.Options(limits=limits, sandboxed=settings.sandboxed, state=state)
    run = Run(settings, root, cfg, assignments, autograded, state, db, options, url=gbk.db_url(db))
    _lock_state(run)
    return run


def _lock_state(run: Run) -> None:
    """Take the state folder (one grader at a time), and clear what a killed grader left behind."""
    run.state.mkdir(parents=True, exist_ok=True)
    run.lock = open(run.state / "lock", "w")
    try:
        fcntl.flock(run.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Fatal(f"another grader is running with the state folder {run.state}; wait for it or pass another --state") from None
    if run.settings.sandboxed:
        from autograder import cgroup

        cgroup.remove_stale()  # control groups of graders that were killed
    runs = run.state / "runs"
    if runs.exists():  # working copies left by a grader that was killed
        shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True, exist_ok=True)
    os.chmod(runs, 0o711)


# ----------------------------------------------------------------------------------------------
# The stages
# ----------------------------------------------------------------------------------------------
def start_gradebook(run: Run) -> None:
    """The gradebook knows each assignment (nbgrader's generate_assignment, with the course config);
    done in the background while the first kernels run: no grade is stored before it is ready."""
    run.prep = threading.Thread(target=_prepare_gradebook, args=(run,), name="gradebook", daemon=True)
    run.prep.start()


def _prepare_gradebook(run: Run) -> None:
    import nbformat

    try:
        for a in run.assignments:
            cells = {}
            for nbname, path in a.source.items():
                nb = nbformat.read(path, as_version=4)
                cells[nbname] = {meta(c)["grade_id"]: float(meta(c).get("points", 0)) for c in nb.cells
                                 if meta(c).get("grade")}
            if not gbk.assignment_is_current(run.url, a.name, cells):
                gbk.add_assignment(run.root, run.cfg["source"], a.name, run.url)
                if not gbk.assignment_is_current(run.url, a.name, cells):
                    raise RuntimeError(f"nbgrader generate_assignment {a.name} did not put it in the gradebook")
    except Exception as exc:  # reported by gradebook_ready(), in the main thread
        run.prep_error.append(f"cannot prepare the gradebook {run.db}: {type(exc).__name__}: {exc}")


def gradebook_ready(run: Run) -> None:
    run.prep.join()
    if run.prep_error:
        raise Fatal(run.prep_error[0])


def collect_submissions(run: Run) -> None:
    staging = run.state / "staging"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        run.collected = col.collect(run.settings.submitted, {a.name: a.notebooks for a in run.assignments}, staging)
    except FileNotFoundError as exc:
        raise Fatal(str(exc)) from None
    for s in run.collected.skipped:
        print(f"autograder: skipped {s}", file=sys.stderr)


def replay_journal(run: Run) -> None:
    """What is already graded (a current journal record) is stored again (idempotent) and not re-run."""
    ref_keys: dict[str, str] = {}

    def ref_key(a: gr.Assignment) -> str:
        if a.name not in ref_keys:
            ref_keys[a.name] = rf.reference_key(a, run.options)
        return ref_keys[a.name]

    for s in run.submissions:
        j = journal.read_journal(journal.journal_path(run.state, s.assignment, s.student))
        if journal.is_current(j, lambda: gr.submission_digest(s.files), lambda: ref_key(run.by_name[s.assignment])):
            run.records[(s.assignment, s.student)] = j
        else:
            run.pending.append(s)
    if run.records:
        gradebook_ready(run)
    for s in run.submissions:
        if (s.assignment, s.student) in run.records:
            gbk.store(run.url, run.records[(s.assignment, s.student)], s.timestamp)


def grade_submissions(run: Run) -> None:
    """Run and judge the pending submissions, --jobs at once.

    The solutions run in a lane of their own, one at a time, beside the --jobs submissions: a
    submission's kernel starts and runs without waiting for its reference (only its verdicts wait),
    and the kernels mostly wait on sockets and timers, so one more kernel costs little CPU."""
    jobs = run.settings.jobs
    progress = report.Progress(len(run.submissions), done=len(run.records), enabled=run.settings.progress)
    slots: queue.Queue[int] = queue.Queue()
    for i in range(jobs + 2):
        slots.put(i)
    run.started = time.monotonic()  # the summary's time: the grading, not the setup or the journal

    def with_slot(fn, *a):
        slot = slots.get()
        try:
            return fn(*a, slot)
        finally:
            slots.put(slot)

    by_name = run.by_name
    refs: dict[str, Future] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference") as ref_pool, \
            ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grader") as pool:
        for name in sorted({s.assignment for s in run.pending}):
            refs[name] = ref_pool.submit(with_slot, lambda slot, a=by_name[name]: rf.reference(a, run.options, slot))
        waiting = ThreadPoolExecutor(max_workers=max(1, len(run.pending)), thread_name_prefix="verdicts")
        # kernels for the next submissions start while the current ones run (in queue order)
        warm = gr.WarmKernels(run.options, [by_name[s.assignment].release_dir for s in run.pending
                                            for _ in by_name[s.assignment].notebooks], ahead=jobs, slot=jobs + 2)
        futures = {pool.submit(with_slot, lambda slot, s=s: _grade_one(run, s, refs, waiting, warm, slot)): s
                   for s in run.pending}
        try:
            _gather(run, futures, progress)
        except BaseException:
            for f in [*futures, *refs.values()]:
                f.cancel()
            raise
        finally:
            waiting.shutdown(wait=False, cancel_futures=True)
            warm.close()
    progress.finish()


def _grade_one(run: Run, s: col.Submission, refs: dict[str, Future], waiting: ThreadPoolExecutor,
               warm: gr.WarmKernels, slot: int) -> dict | Future:
    """Run one submission; its journal record, or a Future of it while the solution still runs."""
    executed = gr.execute_submission(run.by_name[s.assignment], s.student, s.files, refs[s.assignment], run.options,
                                     slot, warm)
    if refs[s.assignment].done():
        return _judge(run, s, executed, refs)
    # the solution still runs: its verdicts wait for it in a thread of their own, and this worker
    # goes on with the next submission
    return waiting.submit(_judge, run, s, executed, refs)


def _judge(run: Run, s: col.Submission, executed: gr.Executed, refs: dict[str, Future]) -> dict:
    record = gr.judge_submission(executed, refs[s.assignment].result(), run.autograded)
    journal.write_journal(journal.journal_path(run.state, s.assignment, s.student), record)
    return record


def _gather(run: Run, futures: dict[Future, col.Submission], progress: report.Progress) -> None:
    """Take each submission's record as it comes; store it once the gradebook is ready."""
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
                if s.assignment not in run.broken:
                    run.broken[s.assignment] = str(exc)
                    print(f"autograder: cannot grade {s.assignment}: {exc}", file=sys.stderr)
                progress.advance(f"{s.student} {s.assignment}: not graded")
                continue
            except Exception as exc:
                run.failures.append(f"{s.student}/{s.assignment}: {type(exc).__name__}: {exc}")
                traceback.print_exc(file=sys.stderr)
                progress.advance(f"{s.student} {s.assignment}: grader error")
                continue
            run.records[(s.assignment, s.student)] = record
            run.unstored.append((record, s.timestamp))
            if not run.prep.is_alive():
                gradebook_ready(run)
                _store_pending(run)
            progress.advance(f"{s.student} {s.assignment} {record['score']:g}/{record['max_score']:g}")
        progress.draw()


def _store_pending(run: Run) -> None:
    while run.unstored:
        record, ts = run.unstored.pop(0)
        gbk.store(run.url, record, ts)


def store_grades(run: Run) -> None:
    gradebook_ready(run)
    _store_pending(run)


def export_grades(run: Run) -> None:
    """nbgrader's CSV export, without the assignments that could not be graded."""
    students = sorted({s.student for s in run.submissions if s.assignment not in run.broken})
    gbk.export(run.url, run.settings.out, [a.name for a in run.assignments if a.name not in run.broken], students)


def write_feedback(run: Run) -> None:
    if not run.settings.feedback:
        return
    folders = {(s.assignment, s.student): next((f.parent for f in s.files.values() if f is not None), None)
               for s in run.submissions}
    for r in run.records.values():
        fb.write(r, run.settings.feedback, folders.get((r["assignment"], r["student"])))


def print_summary(run: Run) -> None:
    print(report.summary(run.records, run.assignments, time.monotonic() - run.started, run.failures,
                         run.collected.skipped))


STAGES = (
    start_gradebook,
    collect_submissions,
    replay_journal,
    grade_submissions,
    store_grades,
    export_grades,
    write_feedback,
    print_summary,
)


def autograde(settings: Settings) -> Run:
    """Grade the class: open the run, then each stage in turn."""
    run = open_run(settings)
    for stage in STAGES:
        stage(run)
    return run
