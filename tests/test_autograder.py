"""The autograder's parts that need no kernel (collect, assemble, verify, messages, feedback), and
the command's refusal and resume paths."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import assemble as asm
from autograder import collect as col
from autograder import feedback as fb
from autograder import verify
from autograder.grade import hidden_lines, safe_message
from autograder.release import REPO

FIXTURE = REPO / "tests" / "fixtures" / "course"
SOURCE = FIXTURE / "solutions" / "00-echo" / "00-echo.ipynb"
RELEASE = FIXTURE / "notebooks" / "00-echo" / "00-echo.ipynb"


def read(p):
    return nbformat.read(p, as_version=4)


def by_id(nb):
    return {asm.meta(c).get("grade_id"): c for c in nb.cells if asm.meta(c).get("grade_id")}


# ----------------------------------------------------------------------------------------------
# collect
# ----------------------------------------------------------------------------------------------
def test_collect_finds_students_in_nbgrader_layout(tmp_path):
    for student in ("alice", "bob"):
        d = tmp_path / "sub" / student / "00-echo"
        d.mkdir(parents=True)
        (d / "00-echo.ipynb").write_text(RELEASE.read_text())
    (tmp_path / "sub" / "carol" / "other").mkdir(parents=True)
    got = col.collect(tmp_path / "sub", {"00-echo": ["00-echo"]}, tmp_path / "staging")
    assert sorted(s.student for s in got.submissions) == ["alice", "bob"]
    assert all(s.files["00-echo"].name == "00-echo.ipynb" for s in got.submissions)


def test_collect_skips_symlinks_and_bad_ids(tmp_path):
    sub = tmp_path / "sub"
    (sub / "alice" / "00-echo").mkdir(parents=True)
    (sub / "alice" / "00-echo" / "00-echo.ipynb").symlink_to(SOURCE)  # a link to the solutions
    (sub / "bad id!").mkdir()
    (sub / "mallory").symlink_to(FIXTURE)
    got = col.collect(sub, {"00-echo": ["00-echo"]}, tmp_path / "staging")
    (alice,) = got.submissions
    assert alice.files["00-echo"] is None  # the symlinked notebook is not read
    assert any("bad id!" in s for s in got.skipped) and any("mallory" in s for s in got.skipped)


def test_lms_zips_are_read_by_member_name_never_extracted(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    with zipfile.ZipFile(sub / "alice_attempt_2024-05-01.zip", "w") as z:
        z.writestr("../../../../escaped.ipynb", "{}")
        z.writestr("/abs/evil.txt", "x")
        z.writestr("work/00-echo.ipynb", RELEASE.read_text())
    with zipfile.ZipFile(sub / "bob.zip", "w") as z:
        z.writestr("__MACOSX/._00-echo.ipynb", "junk")
        z.writestr("bob/renamed.ipynb", RELEASE.read_text())
    (sub / "carol_00-echo.ipynb").write_text(RELEASE.read_text())
    (sub / "not-a-zip.zip").write_text("nope")
    staging = tmp_path / "staging"
    got = col.collect(sub, {"00-echo": ["00-echo"]}, staging)
    students = {s.student: s for s in got.submissions}
    assert sorted(students) == ["alice", "bob", "carol"]
    for s in students.values():
        assert s.files["00-echo"].read_text() == RELEASE.read_text()
        assert staging in s.files["00-echo"].parents
    files = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert not any("escaped" in str(p) or "evil" in str(p) for p in files), files
    assert not Path("/abs/evil.txt").exists()
    assert any("not-a-zip" in s for s in got.skipped)


# ----------------------------------------------------------------------------------------------
# assemble: locked cells come from the source
# ----------------------------------------------------------------------------------------------
def test_edited_locked_cells_are_restored_and_noted():
    sub = read(RELEASE)
    cells = by_id(sub)
    cells["double-hidden"].source = "pass"
    cells["double-hidden"].metadata["nbgrader"]["points"] = 100
    cells["double"].metadata["nbgrader"]["points"] = 50  # a solution cell cannot become graded either
    nb, notes = asm.assemble(read(SOURCE), sub, read(RELEASE))
    got = by_id(nb)
    assert "BEGIN HIDDEN TESTS" in got["double-hidden"].source
    assert got["double-hidden"].metadata["nbgrader"]["points"] == 2
    assert "points" not in got["double"].metadata["nbgrader"]
    assert any("double-hidden was edited" in n for n in notes)


def test_added_graded_cells_are_dropped_and_deleted_ones_put_back():
    sub = read(RELEASE)
    sub.cells = [c for c in sub.cells if asm.meta(c).get("grade_id") != "udp-ask-echo"]
    fake = nbformat.v4.new_code_cell("pass")
    fake.metadata["nbgrader"] = {"grade": True, "grade_id": "free-points", "points": 99, "locked": True, "solution": False}
    sub.cells.append(fake)
    nb, notes = asm.assemble(read(SOURCE), sub, read(RELEASE))
    ids = [asm.meta(c).get("grade_id") for c in nb.cells if asm.meta(c).get("grade_id")]
    assert "free-points" not in ids
    assert ids.index("udp-ask-echo") == ids.index("udp-ask") + 1
    assert any("free-points" in n for n in notes) and any("udp-ask-echo was missing" in n for n in notes)


def test_a_submission_of_an_earlier_release_is_not_reported_as_edited(tmp_path):
    """A class in progress: the instructor changes a graded cell's comment and releases again; a
    learner who fetched the earlier release has edited nothing."""
    from nbgrader import utils as nbu

    from autograder.release import generate, locked_checksums, past_checksums, remember

    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    import shutil

    shutil.copytree(FIXTURE / "solutions" / "00-echo", course / "solutions" / "00-echo")
    shutil.copy(FIXTURE / "nbgrader_config.py", course / "nbgrader_config.py")
    old_release = read(generate(tmp_path / "r1", ["00-echo"], repo=course) / "00-echo" / "00-echo.ipynb")
    remember("00-echo", {"00-echo": old_release}, root=course)
    src_path = course / "solutions" / "00-echo" / "00-echo.ipynb"
    source = read(src_path)
    gid = next(asm.meta(c)["grade_id"] for c in source.cells if asm.is_graded_test(c))
    by_id(source)[gid].source = "# a clearer comment, added mid-term\n" + by_id(source)[gid].source
    nbformat.write(source, src_path)
    new_release = read(generate(tmp_path / "r2", ["00-echo"], repo=course) / "00-echo" / "00-echo.ipynb")
    assert locked_checksums(new_release)[gid] != locked_checksums(old_release)[gid]
    submitted = old_release  # the learner's notebook, fetched before the change, graded cells untouched
    _, without_history = asm.assemble(source, submitted, new_release)
    assert any(f"{gid} was edited" in n for n in without_history)  # what an instructor saw before
    remember("00-echo", {"00-echo": new_release}, root=course)
    past = past_checksums("00-echo", root=course)["00-echo"]
    nb, notes = asm.assemble(source, submitted, new_release, past)
    assert notes == [], notes
    assert by_id(nb)[gid].source.startswith("# a clearer comment")  # graded with today's cell
    edited = copy_nb(submitted)
    by_id(edited)[gid].source = "pass"
    _, notes = asm.assemble(source, edited, new_release, past)
    assert any(f"{gid} was edited" in n for n in notes), notes
    assert nbu.compute_checksum(by_id(edited)[gid]) not in past[gid]


def copy_nb(nb):
    import copy

    return copy.deepcopy(nb)


def test_unedited_release_has_no_notes():
    _, notes = asm.assemble(read(SOURCE), read(RELEASE), read(RELEASE))
    assert notes == []


# ----------------------------------------------------------------------------------------------
# verify, messages, feedback
# ----------------------------------------------------------------------------------------------
REF = [{"check": "double", "calls": [{"args": [1], "returned": 2}]}]


@pytest.mark.parametrize("kernel_passed,evidence,reference,points,flagged", [
    (True, REF, REF, True, False),
    (False, REF, REF, False, False),  # the kernel's failure stands
    (True, [], REF, False, True),  # a pass without evidence: forged
    (True, [{"check": "double", "calls": [{"args": [1], "returned": 3}]}], REF, False, True),
    (True, [], [], True, False),  # a check without evidence: the kernel's word (reported as unverified)
    (True, REF, None, False, True),
])
def test_judge(kernel_passed, evidence, reference, points, flagged):
    ok, flag = verify.judge(kernel_passed, evidence, reference)
    assert ok is points and bool(flag) is flagged


@pytest.mark.parametrize("learner,imports,found", [
    ("from course.framing import recv_exactly", [], ["course.framing.recv_exactly"]),
    ("import course.framing as fr\nrecv_exactly = fr.recv_exactly", [], ["course.framing.recv_exactly"]),
    ("def recv_exactly(sock, n):\n    return course.framing.recv_exactly(sock, n)", ["import course"],
     ["course.framing.recv_exactly"]),
    ("def recv_exactly(sock, n):\n    return framing.recv_exactly(sock, n)", ["from course import framing"],
     ["course.framing.recv_exactly"]),
    # the learner's own code, using other course helpers or methods of the same name: nothing to note
    ("def recv_exactly(sock, n):\n    buf = bytearray()\n    while len(buf) < n:\n        buf += sock.recv(n - len(buf))\n"
     "    return bytes(buf)", ["from course.framing import split_into_chunks"], []),
    ("class R:\n    def recv_exactly(self, n):\n        return self.recv_exactly(n)", ["import course"], []),
    ("def recv_exactly(sock, n):\n    with course.serving.TcpServer(): pass", ["import course"], []),
    ("this is not python (", [], []),
])
def test_reuse_of_the_course_implementation_is_noted(learner, imports, found):
    from autograder import reuse

    solution = "def recv_exactly(sock, n):\n    ### BEGIN SOLUTION\n    ...\n    ### END SOLUTION"
    assert reuse.reused(solution, learner, imports) == found


def test_a_failing_reuse_reader_costs_no_other_note(monkeypatch):
    """The grader reads submissions in --jobs threads, and CPython 3.11's ast.parse raised
    SystemError ("AST constructor recursion depth mismatch") when two threads parsed at once: the
    grader then lost every note of that submission (an edited locked cell went unreported at
    --jobs 8; the fixture class's edits-locked-cell sample, graded at the default --jobs, caught it).
    reuse.py now parses one source at a time; should its reading fail anyway, the other notes stand."""
    from autograder import grade, reuse

    def broken(source_nb, nb):
        raise SystemError("AST constructor recursion depth mismatch (before=48, after=43)")

    monkeypatch.setattr(reuse, "notes", broken)
    notes = grade._reuse_notes(read(SOURCE), read(SOURCE))
    assert notes == ["the cells could not be read for the course's own code (SystemError: AST constructor recursion "
                     "depth mismatch (before=48, after=43))"]


def test_messages_never_quote_hidden_tests():
    hidden = hidden_lines(read(SOURCE))
    assert any("10**20" in line for line in hidden)
    leaked = "AssertionError: " + hidden[0]
    assert "withheld" in safe_message(leaked, hidden)
    ok = "YourCodeError: double('ab') returned 'ab'; expected 'abab'."
    assert safe_message(ok, hidden) == ok
    assert len(safe_message("x" * 5000, hidden)) <= 400


def test_feedback_shows_messages_and_escapes_them(tmp_path):
    record = {"assignment": "00-echo", "student": "alice", "notebooks": {"00-echo": {"cells": [
        {"grade_id": "double-visible", "points": 1.0, "max_points": 1.0, "passed": True, "message": ""},
        {"grade_id": "udp-ask-echo", "points": 0.0, "max_points": 3.0, "passed": False,
         "message": "udp_ask returned <script>alert(1)</script>"}], "notes": [], "reason": ""}}}
    (page,) = fb.write(record, tmp_path)
    text = page.read_text()
    assert "1 / 4" in text and "udp-ask-echo" in text and "&lt;script&gt;" in text and "<script>" not in text


# ----------------------------------------------------------------------------------------------
# the command: refusal without a sandbox, unknown assignment, resume after a kill
# ----------------------------------------------------------------------------------------------
def run_grader(args, env=None, **kw):
    e = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"], **(env or {}))
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *args], capture_output=True, text=True,
                          env=e, timeout=600, **kw)


def small_class(tmp_path, students=("alice", "bob")):
    sub = tmp_path / "sub"
    for i, s in enumerate(students):
        d = sub / s / "00-echo"
        d.mkdir(parents=True)
        (d / "00-echo.ipynb").write_text((SOURCE if i % 2 == 0 else RELEASE).read_text())
    return sub


def common_args(tmp_path, sub):
    return ["00-echo", "--submitted", str(sub), "--out", str(tmp_path / "grades.csv"), "--root", str(FIXTURE),
            "--db", str(tmp_path / "gb.db"), "--autograded", str(tmp_path / "autograded"), "--quiet"]


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_cgroup_files_of_both_layouts(tmp_path, monkeypatch, layout):
    """The files the grader writes and reads in a cgroup v1 (memory + pids hierarchies) and a v2
    (unified) tree. A fake cgroupfs: this machine has one layout at most, CI perhaps the other;
    test_real_cgroup_limits_a_process checks the real one."""
    from autograder.cgroup import SandboxGroup

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    if layout == "v2":
        (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
        (tmp_path / "cgroup.subtree_control").write_text("")
    else:
        (tmp_path / "memory").mkdir()
        (tmp_path / "pids").mkdir()
    g = SandboxGroup(memory=123456789, tasks=77, root=tmp_path)
    assert g.active and g.v2 == (layout == "v2")
    if layout == "v2":
        (d,) = g.dirs
        assert (d / "memory.max").read_text() == "123456789" and (d / "pids.max").read_text() == "77"
        assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids"
        assert g.procs == [str(d / "cgroup.procs")]
        mem_events, pid_dirs = d / "memory.events", [d]
        mem_events.write_text("low 0\nhigh 0\nmax 5\noom 0\noom_kill 0\n")
    else:
        m, p = g.dirs
        assert (m / "memory.limit_in_bytes").read_text() == "123456789" and (p / "pids.max").read_text() == "77"
        assert g.procs == [str(m / "cgroup.procs"), str(p / "cgroup.procs")]
        pid_dirs = [p]
        (m / "memory.failcnt").write_text("0\n")
    assert not g.hit_memory()
    for d in pid_dirs:
        (d / "pids.events").write_text("max 0\n")
    assert not g.hit_processes()
    if layout == "v2":
        mem_events.write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")
    else:
        (m / "memory.failcnt").write_text("3\n")
    for d in pid_dirs:
        (d / "pids.events").write_text("max 12\n")
    assert g.hit_memory() and g.hit_processes()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a cgroup needs root")
def test_real_cgroup_limits_a_process():
    """On this machine's real cgroupfs: a process that joins the group and forks past its task
    limit is refused, and the group reports it."""
    from autograder.cgroup import SandboxGroup

    g = SandboxGroup(memory=512 * 1024**2, tasks=8)
    if not g.active:
        pytest.skip("no writable cgroup memory and pids controllers here")
    dirs = list(g.dirs)
    try:
        code = ("import os, time\nkids = []\ntry:\n    for _ in range(50):\n        pid = os.fork()\n"
                "        if pid == 0:\n            time.sleep(30); os._exit(0)\n        kids.append(pid)\n"
                "except OSError as e:\n    print('refused after', len(kids))\n"
                "for k in kids:\n    os.kill(k, 9); os.waitpid(k, 0)\n")
        out = subprocess.run([sys.executable, "-c", code], preexec_fn=g.enter, capture_output=True, text=True,
                             timeout=60)
        assert "refused after" in out.stdout, f"the task limit of 8 did not stop 50 forks: {out.stdout} {out.stderr}"
        assert int(out.stdout.split()[-1]) < 8
        assert g.hit_processes()
    finally:
        g.remove()
    assert dirs and not any(d.exists() for d in dirs), f"groups left behind: {[d for d in dirs if d.exists()]}"


@pytest.mark.grading
@pytest.mark.timeout(300)
def test_a_timed_out_cell_that_grew_the_kernel_stops_it_and_a_plain_hang_does_not(tmp_path):
    """Memory held after a timeout is judged by what the cell grew, not by how far a loaded machine
    let it get: a cell that allocated 400 MiB and then hangs stops the kernel ("memory"); a cell
    that only hangs is interrupted and the kernel goes on."""
    from autograder.kernel import MEMORY_GROWTH, KernelGone, SandboxedKernel
    from autograder.sandbox import Limits

    assert 400 * 1024**2 > MEMORY_GROWTH
    work = tmp_path / "w"
    work.mkdir()
    os.chmod(tmp_path, 0o755)
    with SandboxedKernel(tmp_path, work, Limits(), wall=300) as kernel:
        hang = kernel.run_cell("import time\ntime.sleep(600)", timeout=3)
        assert hang.status == "timeout" and hang.error.startswith("TimeoutError")
        assert kernel.run_cell("print(6 * 7)", timeout=30).outputs[0]["text"] == "42\n"
        # the allocation finishes long before the timeout (it prints first); then the cell hangs
        with pytest.raises(KernelGone) as gone:
            kernel.run_cell("import sys, time\nblob = bytearray(400 * 1024**2)\nprint('allocated', flush=True)\n"
                            "time.sleep(600)", timeout=8)
        assert gone.value.limit == "memory" and "grown the kernel by" in gone.value.reason, gone.value.reason


@pytest.mark.grading
@pytest.mark.timeout(300)
def test_a_timed_out_cell_that_flooded_its_output_is_killed_as_a_flood(tmp_path):
    """A cell that sent over a megabyte and then runs out of time is an output flood, whether or
    not the grader had read up to the output limit by then."""
    from autograder.kernel import FLOOD_BYTES, KernelGone, SandboxedKernel
    from autograder.sandbox import Limits

    work = tmp_path / "w"
    work.mkdir()
    os.chmod(tmp_path, 0o755)
    with SandboxedKernel(tmp_path, work, Limits(), wall=300) as kernel:
        quiet = kernel.run_cell("print('x' * 1000)\nimport time\ntime.sleep(600)", timeout=3)
        assert quiet.status == "timeout"  # a little output and a hang: interrupted, the kernel goes on
        with pytest.raises(KernelGone) as gone:
            kernel.run_cell(f"for _ in range(4):\n    print('y' * {FLOOD_BYTES // 3})\nimport time\ntime.sleep(600)",
                            timeout=5)
        assert gone.value.limit == "output" and "output flood" in gone.value.reason, gone.value.reason


def test_tree_rss_counts_memory_held_by_descendants():
    """The grader measures what a sandbox holds from outside, over the whole process tree."""
    from autograder.kernel import tree_rss

    held = 300 * 1024**2
    code = f"import sys; b = bytearray({held}); sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.read()"
    # a child that holds the memory, inside a grandchild shell: the tree is walked, not one process
    proc = subprocess.Popen(["sh", "-c", f'{sys.executable} -c "{code}"'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"  # bounded by the test's timeout if the child fails
        measured = tree_rss(proc.pid)
        assert held <= measured < held + 200 * 1024**2, f"tree_rss measured {measured} bytes for a tree holding {held}"
        assert tree_rss(os.getpid()) >= measured
    finally:
        proc.stdin.close()
        proc.wait(30)


@pytest.mark.timeout(300)
def test_refuses_without_sandbox_tool_unless_told(tmp_path):
    sub = small_class(tmp_path, ("alice",))
    proc = run_grader(common_args(tmp_path, sub), env={"AUTOGRADER_BWRAP": "/nonexistent/bwrap"})
    assert proc.returncode == 2
    assert "bwrap" in proc.stderr and "--no-sandbox" in proc.stderr and "Refusing" in proc.stderr
    assert not (tmp_path / "grades.csv").exists()


@pytest.mark.grading
@pytest.mark.timeout(600)
def test_no_sandbox_grades_when_told_explicitly(tmp_path):
    sub = small_class(tmp_path)
    proc = run_grader(common_args(tmp_path, sub) + ["--no-sandbox"], env={"AUTOGRADER_BWRAP": "/nonexistent/bwrap"})
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: --no-sandbox" in proc.stderr
    rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert rows == {"alice": 6.0, "bob": 0.0}


@pytest.mark.timeout(300)
def test_unknown_assignment_is_a_grader_error(tmp_path):
    sub = small_class(tmp_path, ("alice",))
    args = common_args(tmp_path, sub)
    args[0] = "99-nope"
    proc = run_grader(args)
    assert proc.returncode == 2 and "no assignment '99-nope'" in proc.stderr


@pytest.mark.grading
@pytest.mark.timeout(900)
def test_killed_grader_resumes_without_losing_or_doubling_grades(tmp_path):
    import tempfile

    students = [f"s{i:02d}" for i in range(6)]
    sub = small_class(tmp_path, students)
    # a short state folder: the sandboxes' working copies live in it, so every kernel's command line
    # names it, and any process that survives the kill can be found by it
    state = Path(tempfile.mkdtemp(prefix="agk-"))
    assert len(str(state / "runs")) <= 40
    args = common_args(tmp_path, sub) + ["--jobs", "1", "--state", str(state)]
    journal = state / "journal" / "00-echo"
    e = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", *args], env=e, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(journal.glob("*.json"))) < 2:
        time.sleep(0.1)
    sandboxes = subprocess.run(["pgrep", "-P", str(proc.pid), "bwrap"], capture_output=True, text=True).stdout.split()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in journal.glob("*.json")}
    key_before = {json.loads(p.read_text())["ref"] for p in journal.glob("*.json")}
    assert 2 <= len(done_before) < len(students), "the grader was not killed mid-run"
    again = run_grader(args)
    assert again.returncode == 0, again.stderr
    key_after = {json.loads(p.read_text())["ref"] for p in journal.glob("*.json")}
    if key_after == key_before:  # (the course package did not change in between: nothing was redone)
        assert {p.name: p.stat().st_mtime_ns for p in journal.glob("*.json") if p.name in done_before} == done_before
    rows = list(csv.DictReader(open(tmp_path / "grades.csv")))
    assert sorted(r["student_id"] for r in rows) == students
    assert {r["student_id"]: float(r["score"]) for r in rows} == {s: (6.0 if i % 2 == 0 else 0.0) for i, s in enumerate(students)}
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(tmp_path / "gb.db")) as gb:
        subs = gb.assignment_submissions("00-echo")
        assert sorted(s.student.id for s in subs) == students
        assert {s.student.id: s.score for s in subs} == {r["student_id"]: float(r["score"]) for r in rows}
    # no sandbox survived the kill of its grader, not even one it was starting at that moment
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (any(Path(f"/proc/{p}").exists() for p in sandboxes) or _naming(state)):
        time.sleep(0.05)
    assert not [p for p in sandboxes if Path(f"/proc/{p}").exists()], f"sandboxes {sandboxes} outlived the killed grader"
    assert not _naming(state), f"processes of the killed grader's sandboxes survive: {_naming(state)}"
    import shutil

    shutil.rmtree(state, ignore_errors=True)


def _naming(folder: Path) -> list[str]:
    """Command lines of the live processes that name `folder`."""
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(folder) in cmd:
                found.append(f"{p.name}: {cmd[:120]}")
    return found



# ----------------------------------------------------------------------------------------------
# No user namespaces inside the sandbox (autograder/seccomp.py)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_seccomp_filter_refuses_only_new_user_namespaces(machine):
    from autograder import seccomp as sc

    prog = sc.program(machine)
    arch, nr = sc.ARCHES[machine]
    deny, allow, nosys = sc.RET_ERRNO | sc.EPERM, sc.RET_ALLOW, sc.RET_ERRNO | sc.ENOSYS
    newuser, newnet, thread = sc.CLONE_NEWUSER, 0x40000000, 0x3D0F00  # CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM...
    assert sc.run(prog, nr["unshare"], arch, newuser | newnet) == deny
    assert sc.run(prog, nr["unshare"], arch, newnet) == allow  # the kernel refuses it without CAP_SYS_ADMIN anyway
    assert sc.run(prog, nr["clone"], arch, newuser) == deny
    assert sc.run(prog, nr["clone"], arch, thread) == allow
    assert sc.run(prog, nr["clone3"], arch, 0) == nosys
    assert sc.run(prog, 0, arch, 0) == allow  # read / io_setup: anything else
    assert sc.run(prog, nr["unshare"], 0x40000003, newuser) == deny  # i386 through int 0x80
    if machine == "x86_64":
        assert sc.run(prog, nr["unshare"] | 0x40000000, arch, newuser) == deny  # x32
    assert len(sc.compiled(machine)) == 8 * len(prog)


@pytest.mark.skipif(not __import__("shutil").which("bwrap"), reason="bubblewrap is not installed")
def test_sandbox_refuses_user_namespaces_and_keeps_threads_and_subprocesses(tmp_path):
    from autograder import sandbox as sb

    code = (
        "import ctypes, os, subprocess, threading\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "r = libc.unshare(0x10000000 | 0x40000000)\n"
        "print('unshare', r, ctypes.get_errno())\n"
        "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
        "print(subprocess.run(['/bin/echo', 'child'], capture_output=True, text=True).stdout.strip())\n"
    )
    (tmp_path / "work").mkdir()
    (tmp_path / "conn").mkdir()
    if os.geteuid() == 0:
        os.chown(tmp_path / "work", sb.BASE_UID, sb.BASE_UID)
    os.chmod(tmp_path, 0o755)
    cmd = sb.command([sys.executable, "-c", code], work=tmp_path / "work", conn_dir=tmp_path / "conn",
                     run_dir=tmp_path, limits=sb.Limits())
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-1000:]
    lines = proc.stdout.split()
    assert lines[:3] == ["unshare", "-1", "1"], f"unshare(CLONE_NEWUSER) was not refused with EPERM: {proc.stdout}"
    assert "thread" in lines and "child" in lines, proc.stdout


# ----------------------------------------------------------------------------------------------
# On a class's hub, nbgrader's own Autograde is refused (autograder/hub.py, deploy/jupyterhub)
# ----------------------------------------------------------------------------------------------
@pytest.mark.grading
def test_nbgrader_autograde_is_refused_with_the_hubs_config(tmp_path):
    """With the hub's nbgrader configuration, `nbgrader autograde` stops before running any cell of
    the submission (nbgrader would run it unsandboxed with the instructor's rights)."""
    import shutil

    from autograder import samples as smp
    from autograder.hub import REFUSAL
    from autograder.release import nbgrader_env

    course = tmp_path / "course"
    shutil.copytree(FIXTURE / "solutions", course / "solutions")
    shutil.copytree(FIXTURE / "notebooks", course / "notebooks")
    marker = tmp_path / "the-submission-ran"
    hostile = smp.Sample("hostile", "00-echo", {"base": "solution", "prepend": [f"open({str(marker)!r}, 'w').write('ran')"]})
    smp.write_class(course / "submitted", ["00-echo"], FIXTURE, samples=[hostile], hostile=True)
    config = (REPO / "deploy" / "jupyterhub" / "nbgrader_config.py").read_text()
    (course / "nbgrader_config.py").write_text((FIXTURE / "nbgrader_config.py").read_text() + "\n" + config.replace("c = get_config()  # noqa: F821", ""))
    env = dict(nbgrader_env(), CLASS_DIR=str(tmp_path))
    nbg = [sys.executable, "-m", "nbgrader"]
    subprocess.run(nbg + ["generate_assignment", "00-echo", "--force"], cwd=course, env=env, check=True, capture_output=True, timeout=300)
    proc = subprocess.run(nbg + ["autograde", "00-echo", "--create", "--force"], cwd=course, env=env, capture_output=True, text=True, timeout=300)
    assert REFUSAL.split(":")[0] in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-1500:]
    assert not marker.exists(), "nbgrader ran the submission's code although the hub's config refuses it"


def test_hub_extension_takes_formgraders_executing_routes():
    import re

    from autograder import hub

    routes = [re.compile(r + "$") for r in hub.REFUSED_ROUTES]
    for path in ("/formgrader/api/submission/04/alice/autograde", "/formgrader/api/assignment/04/generate_feedback",
                 "/formgrader/api/assignment/04/alice/generate_feedback", "/formgrader/submission/abc123"):
        assert any(r.match(path) for r in routes), path
    for path in ("/formgrader/api/assignment/04/release_feedback", "/formgrader/api/assignment/04/collect"):
        assert not any(r.match(path) for r in routes), path


def test_execute_leaves_no_kernel_running():
    """execute() (the tests' and the load check's runner) shuts its kernel down: before, nbclient
    left every kernel of a manager it did not make running until the process exited."""
    from autograder.execute import execute

    def kernels() -> int:
        out = subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", "ipykernel"], capture_output=True, text=True).stdout
        return len(out.split())

    before = kernels()
    execute(SOURCE, timeout=60)
    assert kernels() == before, "execute() left its kernel running"


# ----------------------------------------------------------------------------------------------
# the grader anywhere: the kernels import the course package of the root being graded
# ----------------------------------------------------------------------------------------------
def copy_of_the_course(tmp_path) -> Path:
    """The fixture course with a copy of `course/` beside it, as a course folder on another machine
    or the hub's class folder holds it; its first cell records which course package it imported."""
    root = tmp_path / "elsewhere"
    shutil.copytree(FIXTURE, root)
    shutil.copytree(REPO / "course", root / "course", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("solutions", "notebooks"):
        path = root / folder / "00-echo" / "00-echo.ipynb"
        nb = json.loads(path.read_text())
        nb["cells"][1]["source"] += "\nimport course\nrecord_evidence('which-course', path=course.__file__)"
        path.write_text(json.dumps(nb))
    return root


@pytest.mark.grading
@pytest.mark.timeout(600)
def test_a_copy_of_the_course_is_graded_with_its_own_course_package(tmp_path):
    root = copy_of_the_course(tmp_path)
    sub = tmp_path / "sub" / "alice" / "00-echo"
    sub.mkdir(parents=True)
    shutil.copy(root / "solutions" / "00-echo" / "00-echo.ipynb", sub / "00-echo.ipynb")
    args = common_args(tmp_path, tmp_path / "sub")
    args[args.index("--root") + 1] = str(root)
    proc = run_grader(args, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert rows == {"alice": 6.0}
    graded = (tmp_path / "autograded" / "alice" / "00-echo" / "00-echo.ipynb").read_text()
    assert str(root / "course" / "__init__.py") in graded, "the kernel imported another course package"


@pytest.mark.timeout(300)
def test_a_course_package_the_kernel_cannot_import_is_one_line_before_grading(tmp_path):
    root = copy_of_the_course(tmp_path)
    (root / "course" / "__init__.py").write_text("raise ImportError('a half-copied course')\n")
    sub = small_class(tmp_path, ("alice",))
    args = common_args(tmp_path, sub)
    args[args.index("--root") + 1] = str(root)
    proc = run_grader(args, cwd=str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"cannot import the course package {root / 'course'}" in lines[0]
    assert "ImportError: a half-copied course" in lines[0]
    assert not (tmp_path / "grades.csv").exists()
