"""What the lab tests share (test_netlab and the lab lessons' tests: natlab, udplab, retransmission,
linklab): running Python as the lab's ordinary user, the sandboxes that refuse user namespaces, and
running a notebook's lab cells (as that user, or in a kernel).

The lab is tested as an ordinary user: as root (CI) an unused uid with setpriv, with HOME in a
temporary folder, /usr/bin/python3 (which that uid can read; the venv's interpreter it cannot) and a
readable copy of `course/`; each snippet says who ran it, and AsUser asserts that uid and that
interpreter. Where something a test needs is missing, the test is skipped, except under CI (the
environment variable CI set), where that is a failure (`unavailable`). The fixtures (`ordinary_user`,
`as_user`, `lab_here`) are in conftest.py.
"""
from __future__ import annotations

import json
import os
import pwd
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))
SYSTEM_PYTHON = "/usr/bin/python3"

PRELUDE = textwrap.dedent('''
    import json, os, sys
    with open("/proc/self/uid_map") as f:
        _map = f.read().split()
    print("IDENTITY " + json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
          "executable": sys.executable, "home": os.environ.get("HOME"), "uid_map": _map}), flush=True)
    def report(value):
        print("RESULT " + json.dumps(value), flush=True)
    def children():
        """The processes this one started and that still run (a lab should leave none)."""
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
            return f.read().split()
    def main_of(*argv):
        import contextlib, io
        from course.netlab.__main__ import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main(list(argv))
        return status, out.getvalue()
''')

# A notebook's cells, run one after the other in one namespace (after SETUP), each one's printed
# text kept apart with its time and, if it raised, the traceback; EXTRA, an expression evaluated in
# that namespace at the end, is reported with them.
CELLS = '''
import contextlib, io, time, traceback
namespace = {}
exec(SETUP, namespace)
shown, started = {}, time.monotonic()
for cell_id, source in CELLS.items():
    out, began, error = io.StringIO(), time.monotonic(), None
    try:
        with contextlib.redirect_stdout(out):
            exec(source, namespace)
    except BaseException:
        error = traceback.format_exc()
    shown[cell_id] = {"out": out.getvalue(), "lines": out.getvalue().splitlines(), "seconds": time.monotonic() - began,
                      "error": error}
report({"cells": shown, "seconds": time.monotonic() - started, "extra": eval(EXTRA, namespace) if EXTRA else None})
'''


def unavailable(reason: str) -> None:
    """Skip the test, or fail it under CI, where every lab test must run."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def unused_uid() -> int:
    taken = {p.pw_uid for p in pwd.getpwall()}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            taken |= {int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("Uid:")}
        except (OSError, IndexError, ValueError):
            pass
    rng = random.SystemRandom()
    while True:
        uid = rng.randrange(300_000, 900_000)
        if uid not in taken:
            return uid


class AsUser:
    """Runs Python snippets as the lab's ordinary user, with PRELUDE, and reads what they report."""

    def __init__(self, root: Path):
        self.root = root
        self.root_mode = os.geteuid() == 0
        self.uid = unused_uid() if self.root_mode else os.getuid()
        self.python = SYSTEM_PYTHON if self.root_mode else (SYSTEM_PYTHON if os.path.exists(SYSTEM_PYTHON) else sys.executable)
        self.code = root / "code"
        self.home = root / "home"
        self.code.mkdir()
        self.home.mkdir()
        shutil.copytree(REPO / "course", self.code / "course", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for path in [root, self.code, *self.code.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if self.root_mode:
            os.chown(self.home, self.uid, self.uid)

    def argv(self, code: str, wrap: list[str] | None = None) -> list[str]:
        user = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"] if self.root_mode else []
        env = ["env", "-i", f"HOME={self.home}", f"PYTHONPATH={self.code}", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
        return user + env + (wrap or []) + [self.python, "-c", PRELUDE + textwrap.dedent(code)]

    def popen(self, code: str, wrap: list[str] | None = None, text: bool = True, **kw) -> subprocess.Popen:
        return subprocess.Popen(self.argv(code, wrap), cwd=self.home, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=text, **kw)

    def run(self, code: str, wrap: list[str] | None = None, timeout: float = 90) -> tuple[dict, list]:
        identity, results, _ = self.execute(code, wrap, timeout)
        return identity, results

    def run_together(self, code: str, count: int = 2, timeout: float = 120) -> list[list]:
        """Run `count` copies of a snippet at once (as two test runs would): what each reported."""
        procs = [self.popen(code) for _ in range(count)]
        reports = []
        try:
            for proc in procs:
                out, err = proc.communicate(timeout=timeout)
                reports.append(self.parse(out, err, proc.returncode)[1])
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        return reports

    def execute(self, code: str, wrap: list[str] | None = None, timeout: float = 90) -> tuple[dict, list, str]:
        """Run a snippet: who ran it, what it reported, and its stderr."""
        proc = self.popen(code, wrap)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"a lab snippet did not finish within {timeout} s; stdout {out[-2000:]!r} stderr {err[-2000:]!r}")
        identity, results = self.parse(out, err, proc.returncode)
        return identity, results, err

    def parse(self, out: str, err: str, status: int) -> tuple[dict, list]:
        identity = next((json.loads(line[9:]) for line in out.splitlines() if line.startswith("IDENTITY ")), None)
        results = [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]
        assert status == 0 and identity is not None, f"the lab snippet failed (exit status {status}): {err[-3000:]}"
        self.check_identity(identity)
        return identity, results

    def check_identity(self, identity: dict) -> None:
        assert identity["executable"] == self.python
        assert identity["home"] == str(self.home)
        if identity["uid_map"] == ["0", "0", "4294967295"]:  # the machine's own user namespace
            assert identity["uid"] == self.uid and identity["gid"] == self.uid
            if self.root_mode:
                assert identity["groups"] == []
        elif identity["uid_map"][0] == "0":  # root of a user namespace made with `unshare -r`: our uid outside
            assert identity["uid_map"][1] == str(self.uid)
        else:  # inside bwrap's user namespaces, the same uid
            assert identity["uid"] == self.uid

    def run_cells(self, cells: dict[str, str], setup: str = "", extra: str = "", wrap: list[str] | None = None,
                  timeout: float = 90) -> tuple[dict, dict, str]:
        """Run a notebook's cells {id: source} as this user, in one namespace after `setup`: who ran
        them, {"cells": {id: {"out", "lines", "seconds", "error"}}, "seconds", "extra"} (`extra`, an
        expression evaluated at the end), and stderr."""
        code = (f"CELLS = {cells!r}\nSETUP = {textwrap.dedent(setup)!r}\nEXTRA = {extra!r}\n" + CELLS)
        identity, results, err = self.execute(code, wrap, timeout)
        return identity, results[0], err


def make_user(prefix: str, check_lab: bool):
    """An AsUser in a new temporary folder (removed after), for a fixture to yield; with check_lab,
    skipped (failed under CI) where that user cannot build a lab."""
    if os.geteuid() == 0 and not (shutil.which("setpriv") and os.path.exists(SYSTEM_PYTHON)):
        unavailable("the lab tests need setpriv (util-linux) and /usr/bin/python3 to run as an ordinary user")
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        runner = AsUser(root)
        if check_lab:
            _, results = runner.run("""
                status, out = main_of("check")
                report({"status": status, "out": out.strip()})
            """)
            if results[0]["status"] != 0:
                unavailable(f"no lab network for an ordinary user here: {results[0]['out']}")
        yield runner
    finally:
        shutil.rmtree(root, ignore_errors=True)


def refusing_sandboxes(user: AsUser) -> dict[str, tuple[list[str], str]]:
    """The two sandboxes that refuse user namespaces, {name: (the command to wrap a snippet in, what
    the refusal's sentence says)}: bwrap --disable-userns (no user namespace may be made inside),
    and the grading sandbox's own seccomp filter (autograder/seccomp.py: CLONE_NEWUSER fails with
    EPERM)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        unavailable("bwrap is not installed (make system-packages installs bubblewrap)")
    from autograder import seccomp

    filter_file = user.root / "no-userns.bpf"
    if not filter_file.exists():
        filter_file.write_bytes(seccomp.compiled())
        filter_file.chmod(0o644)
    common = ["--unshare-net", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    return {
        "bwrap --disable-userns": ([bwrap, "--unshare-user", "--disable-userns", *common, "--"], "no more user namespaces"),
        "the grading sandbox's seccomp filter": (["/bin/sh", "-c", 'exec "$@" 3<"$0"', str(filter_file), bwrap, "--unshare-user",
                                                  *common, "--seccomp", "3", "--"], "user namespaces are refused here"),
    }


def cells_where_labs_are_refused(user: AsUser, cells: dict[str, str], setup: str = "", extra: str = "") -> dict:
    """Run a notebook's lab cells in each sandbox that refuses user namespaces, and assert what
    holds for every lesson there: no cell raised, nothing printed a traceback. {sandbox: (what its
    refusal's sentence says, run_cells' report)}, for the lesson's own assertions."""
    found = {}
    for name, (wrap, reason) in refusing_sandboxes(user).items():
        _, report, stderr = user.run_cells(cells, setup, extra, wrap=wrap)
        for cell_id, cell in report["cells"].items():
            assert cell["error"] is None and "Traceback" not in cell["out"], (name, cell_id, cell)
        assert "Traceback" not in stderr, (name, stderr[-2000:])
        found[name] = (reason, report)
    return found


KEPT_RUNS = "[{'live': r.live, 'why': r.why, 'evidence': r.evidence} for r in runs]"


def keeping_runs(module: str, demos) -> str:
    """The setup for run_cells that keeps the run each demo of `module` returned to its cell, in
    `runs` (read back with extra=KEPT_RUNS)."""
    return (f"from course import {module}\n"
            f"runs = []  # the run each demo returned to its cell\n"
            f"def keeping(demo):\n"
            f"    def kept():\n"
            f"        runs.append(demo())\n"
            f"        return runs[-1]\n"
            f"    return kept\n"
            f"for name in {tuple(demos)!r}:\n"
            f"    setattr({module}, name, keeping(getattr({module}, name)))\n")


def assert_refused_cells_show_each_recording(user: AsUser, module, cells: dict[str, str], demo_of) -> None:
    """In every sandbox that refuses user namespaces, each lab cell of `cells` prints the refusal's
    one line, then its demo's recording, whole, and keeps the recording's run; all within 5 s."""
    setup = keeping_runs(module.__name__.rpartition(".")[2], [demo_of(gid) for gid in cells])
    for name, (reason, result) in cells_where_labs_are_refused(user, cells, setup, extra=KEPT_RUNS).items():
        for gid, run in zip(cells, result["extra"]):
            printed = result["cells"][gid]["lines"]
            assert printed[0].startswith("no lab network here:") and reason in printed[0], (name, printed[0])
            assert not run["live"] and run["why"] == printed[0]
            assert printed[1:] == module.load_recording(demo_of(gid)).lines(), (name, gid)  # the recording, whole
        assert result["seconds"] < 5, f"{name}: the refused cells took {result['seconds']:.1f} s"


def cell_sources(path: Path, ids) -> dict[str, str]:
    """{cell id: source} of a notebook's cells whose id is in `ids`, in the notebook's order."""
    import nbformat

    return {c.id: c.source for c in nbformat.read(path, as_version=4).cells if c.id in ids}


# ----------------------------------------------------------------------------------------------
# Frames built by hand: Ethernet, IPv4 or IPv6, then TCP or UDP (checksums are not read)
# ----------------------------------------------------------------------------------------------
def ipv4(src, dst, proto, payload, ident=1, mf=False, offset=0, df=False, ttl=64):
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (offset // 8)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, ttl, proto, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + header + payload


def tcp(src, dst, flags, seq, ack=0, data=b"", mss=None, options=b"", window=64000):
    """A TCP segment (flags like "SYN,ACK") with `options`, and an MSS option first if `mss`."""
    options = (struct.pack("!BBH", 2, 4, mss) if mss else b"") + options
    bits = sum(1 << i for i, name in enumerate(("FIN", "SYN", "RST", "PSH", "ACK")) if name in flags.split(","))
    segment = struct.pack("!HHIIHHHH", src[1], dst[1], seq, ack, ((20 + len(options)) // 4) << 12 | bits, window, 0, 0)
    return ipv4(src[0], dst[0], 6, segment + options + data)


def ipv6(src, dst, next_header, payload, hop_limit=64):
    """An Ethernet frame with an IPv6 header (40 bytes, no extension header) and `payload`."""
    header = struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, hop_limit,
                         socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst))
    return b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + header + payload


def tcp6(src, dst, flags, seq, ack=0, data=b""):
    """A TCP segment (flags like "RST,ACK") over IPv6, without options."""
    bits = sum(1 << i for i, name in enumerate(("FIN", "SYN", "RST", "PSH", "ACK")) if name in flags.split(","))
    segment = struct.pack("!HHIIHHHH", src[1], dst[1], seq, ack, 5 << 12 | bits, 64000, 0, 0)
    return ipv6(src[0], dst[0], 6, segment + data)


def udp_packet(ident, offset, data, more, src="192.0.2.2", dst="198.51.100.10", df=False, ttl=64):
    """An IPv4 packet of UDP: a whole datagram, or one fragment of it (`data` from `offset`, `more` to come)."""
    return ipv4(src, dst, 17, data, ident=ident, mf=more, offset=offset, df=df, ttl=ttl)


# ----------------------------------------------------------------------------------------------
# A notebook's lab cells in a real kernel
# ----------------------------------------------------------------------------------------------
def executed_cells(path: Path, ids, timeout: float = 120) -> dict:
    """Execute a notebook in a real kernel: the outputs of its cells whose id is in `ids`."""
    from autograder.execute import execute

    nb, _ = execute(path, timeout=timeout)
    return {c.id: c.outputs for c in nb.cells if c.id in ids}


def text_of(outputs) -> str:
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


def errors_of(outputs) -> list:
    return [o for o in outputs if o.output_type == "error"]


# ----------------------------------------------------------------------------------------------
# The live-or-recording fallback every lab lesson module shares (course/netlab/lesson.py)
# ----------------------------------------------------------------------------------------------
REFUSED = "no lab network here: the reason, in one sentence"
AGENT_SILENT = "the lab's agent (pid 1) did not answer 'exec' within 10.0 s; the lab is closed"


def assert_a_refusal_is_one_line_then_each_recording(module, demos: list[str], monkeypatch, capsys) -> None:
    """Where no lab can be built, each demo prints the refusal's one line, then its recording; the
    refusal is remembered, so only the first demo tries to build a lab."""
    from course.errors import SetupError

    calls = []

    def refused(name):
        calls.append(name)
        raise SetupError(REFUSED)

    module.forget_refusal()
    try:
        monkeypatch.setattr(module, "live", refused)
        for demo in demos:
            getattr(module, demo)().print()
        out = capsys.readouterr().out.splitlines()
    finally:
        module.forget_refusal()
    assert calls == demos[:1]
    assert out == [line for d in demos for line in [REFUSED, *module.load_recording(d).lines()]]


def assert_a_failed_live_run_shows_the_recording(module, demo: str, monkeypatch, capsys) -> None:
    """A live run that fails (not a refusal) prints why, then the recording; the next demo tries again."""
    from course.errors import PeerError

    def broken(name):
        raise PeerError(AGENT_SILENT)

    module.forget_refusal()
    try:
        monkeypatch.setattr(module, "live", broken)
        run = getattr(module, demo)()
        run.print()
        out = capsys.readouterr().out.splitlines()
        assert module._fallback.refused is None  # a failed run is not a refusal
    finally:
        module.forget_refusal()
    assert out[0] == f"the live run failed, so this is the recording: {AGENT_SILENT}"
    assert out[1:] == module.load_recording(demo).lines() and not run.live
