"""The sandbox a submission's kernel runs in (stage: "sandbox"), built from bubblewrap (`bwrap`)
and util-linux (`prlimit`, `setpriv`).

Inside the sandbox a kernel sees:

- its own network namespace, where only the loopback interface exists (its loopback tests work;
  the machine's interfaces, and every port of the other sandboxes, do not exist for it);
- its own PID, IPC and UTS namespaces: it sees only its own processes, and when the grader kills
  the sandbox every process started inside dies with it (orphans included);
- a read-only system: /usr, the Python installation, the venv and the course's `course` package,
  nothing else of the machine (no /etc beyond a tiny synthetic one, no /root, no solutions/,
  no gradebook, no other student, no grader code);
- one writable folder, /sandbox/work, holding a fresh copy of this submission's files only, and a
  private /tmp;
- the folder of its connection file, bound at the same path, where the kernel creates its
  ZeroMQ `ipc` sockets (unix sockets cross network namespaces; TCP ports would not).

When the grader runs as root, the kernel runs as an unprivileged user of its own (one uid per
sandbox on the machine, so that the process limit of one sandbox is not shared with another) with no
capabilities and `no_new_privs`. Resource limits (`prlimit`): address space, CPU seconds,
processes, open files and file size. The wall clock and per-cell timeouts are enforced from
outside the sandbox by the grader, which kills the whole sandbox (`bwrap` and everything in it).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = "/sandbox/work"  # the submission's working copy, as the kernel sees it
BASE_UID = 61000  # the sandboxed kernels run as a free uid in BASE_UID .. BASE_UID+UID_COUNT-1 when the grader is root
UID_COUNT = 1000


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Times in seconds, sizes in bytes."""

    memory: int = 2 * 1024**3  # address space of each process in the sandbox (RLIMIT_AS)
    cpu: int = 300  # CPU seconds of each process (RLIMIT_CPU)
    processes: int = 128  # processes and threads of the sandbox's user (RLIMIT_NPROC)
    open_files: int = 256  # file descriptors per process (RLIMIT_NOFILE)
    file_size: int = 64 * 1024**2  # largest file a process may write (RLIMIT_FSIZE)
    output: int = 8 * 1024**2  # bytes of output the grader reads from one submission's kernel
    cell_output: int = 64 * 1024  # bytes of text output kept per cell
    cell_timeout: float = 30.0  # upper bound of a cell's time (nbgrader's ExecutePreprocessor.timeout)
    min_cell_timeout: float = 5.0  # lower bound of a cell's time, however fast the solution is
    wall: float | None = None  # seconds for a whole submission; None: derived from the solution
    startup: float = 60.0  # seconds a kernel may take to start
    # nice value of the kernels when grading as root: the course's checks carry deadlines of a few
    # seconds, so a kernel must not lose the CPU to other work on the machine (bounded by the CPU
    # and wall-clock limits)
    priority: int = -10


class SandboxUnavailable(RuntimeError):
    """bwrap (or prlimit) is missing or cannot create a sandbox on this machine."""


def tool(name: str) -> str | None:
    """Path of a sandbox tool; AUTOGRADER_<NAME> overrides it (the tests use it to play a machine
    without bwrap)."""
    override = os.environ.get(f"AUTOGRADER_{name.upper()}")
    if override is not None:
        return override if os.access(override, os.X_OK) else None
    return shutil.which(name) or next((p for p in (f"/usr/bin/{name}", f"/bin/{name}") if os.path.exists(p)), None)


def _mounts_for(paths: list[str]) -> list[str]:
    """--dir for every parent (mode 0555: an unprivileged kernel may traverse it, and not write into
    it even where its user namespace makes it the owner), then
    --ro-bind for each path."""
    args: list[str] = []
    made: set[str] = {"/"}
    for p in paths:
        parents = list(Path(p).parents)[::-1][1:]
        for parent in parents:
            s = str(parent)
            if s not in made and s not in ("/usr",):
                made.add(s)
                args += ["--perms", "0555", "--dir", s]
        made.add(p)
        args += ["--ro-bind", p, p]
    return args


def python_paths() -> list[str]:
    """The folders the kernel's Python needs: the interpreter's installation and the venv."""
    paths = set()
    for p in (sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix):
        rp = os.path.realpath(p)
        if not rp.startswith("/usr/") and rp != "/usr":
            paths.add(rp)
    exe = os.path.realpath(sys.executable)
    if not exe.startswith("/usr/"):
        paths.add(str(Path(exe).parent.parent))
    # keep only the outermost folders
    out = []
    for p in sorted(paths, key=len):
        if not any(p == q or p.startswith(q + "/") for q in out):
            out.append(p)
    return out


_COURSE_DIR: Path | None = None  # set by use_course(): the `course` package the kernels import


def course_package() -> str:
    """The folder of the `course` package the kernels import: the graded root's own (use_course),
    else the one this grader imports."""
    if _COURSE_DIR is not None:
        return str(_COURSE_DIR)
    import course

    return str(Path(course.__file__).resolve().parent)


def use_course(root: Path) -> Path:
    """Make the kernels import ROOT/course when the course folder being graded has one (a copy of the
    course in another folder, the hub's class folder), whatever `course` this grader's virtualenv
    has installed; returns the package folder used."""
    global _COURSE_DIR
    pkg = Path(root).resolve() / "course"
    _COURSE_DIR = pkg if (pkg / "__init__.py").is_file() else None
    return Path(course_package())


def kernel_course_check(python: str = sys.executable) -> str | None:
    """None when a kernel started as the grader starts them imports exactly course_package();
    otherwise one sentence saying what it imports instead, or why it cannot import it."""
    pkg = Path(course_package())
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "PYTHONPATH": str(pkg.parent), "HOME": "/tmp",
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "COURSE_EVIDENCE": "0"}
    code = "import course, os; print(os.path.realpath(os.path.dirname(course.__file__)))"
    try:
        proc = subprocess.run([python, "-c", code], env=env, cwd="/", capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the kernel's interpreter {python} could not be started to import the course package: {exc}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return (f"a kernel cannot import the course package {pkg} with {python} ({last}); "
                f"check that {pkg.parent} holds the course and that this virtualenv has its dependencies")
    got = proc.stdout.strip()
    if got != str(pkg.resolve()):
        return (f"a kernel would import the course package from {got}, not from {pkg}; "
                f"grade with the virtualenv of that course or check PYTHONPATH")
    return None


def write_etc(folder: Path, uid: int) -> Path:
    """A minimal /etc for the sandbox: hosts (loopback names only), passwd and group."""
    etc = folder / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
    (etc / "passwd").write_text(f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nlearner:x:{uid}:{uid}:learner:/tmp:/usr/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\nlearner:x:{uid}:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files\n")
    for p in etc.iterdir():
        p.chmod(0o644)
    etc.chmod(0o755)
    return etc


def kernel_env(uid: int) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "USER": "learner",
        "LOGNAME": "learner",
        "LANG": "C.UTF-8",
        "IPYTHONDIR": "/tmp/.ipython",
        "JUPYTER_CONFIG_DIR": "/tmp/.jupyter",
        "JUPYTER_DATA_DIR": "/tmp/.jupyter-data",
        "MPLCONFIGDIR": "/tmp/.matplotlib",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "NBGRADER_EXECUTION": "autograde",
        "COURSE_EVIDENCE": "1",
        # the graded root's own course package comes before any installed one (editable or not)
        "PYTHONPATH": str(Path(course_package()).parent),
    }


def command(
    argv: list[str],
    *,
    work: Path,
    conn_dir: Path,
    run_dir: Path,
    limits: Limits,
    slot: int = 0,
) -> list[str]:
    """The bwrap command line that runs `argv` (the kernel) sandboxed, with `work` as its only
    writable folder (seen as /sandbox/work) and `conn_dir` bound at its own path."""
    bwrap, prlimit, setpriv = tool("bwrap"), tool("prlimit"), tool("setpriv")
    if not bwrap or not prlimit:
        raise SandboxUnavailable("bwrap and prlimit are needed (Debian: apt-get install bubblewrap util-linux)")
    root = os.geteuid() == 0
    uid = BASE_UID + slot if root else os.getuid()
    etc = write_etc(run_dir, uid)
    args = [bwrap, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox", "--clearenv"]
    if not root:
        args += ["--unshare-user", "--disable-userns"]
    else:
        # setpriv (below) drops to the slot's uid and then every capability.
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    args += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/lib", "/lib64", "/sbin", "/lib32", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    args += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp", "--perms", "0555", "--dir", "/etc"]
    for name in ("hosts", "passwd", "group", "nsswitch.conf"):
        args += ["--ro-bind", str(etc / name), f"/etc/{name}"]
    if os.path.exists("/etc/ld.so.cache"):
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    args += _mounts_for(python_paths() + [course_package()])
    args += ["--perms", "0555", "--dir", "/sandbox", "--bind", str(work), WORK]
    for parent in list(Path(conn_dir).parents)[::-1][1:]:
        args += ["--perms", "0555", "--dir", str(parent)]
    args += ["--bind", str(conn_dir), str(conn_dir), "--chdir", WORK]
    # the sandbox's own root (a tmpfs holding the mount points) read-only too: without root, the
    # kernel owns it in its user namespace and could write there (harmless, but not "read-only")
    args += ["--remount-ro", "/"]
    for k, v in kernel_env(uid).items():
        args += ["--setenv", k, v]
    # No user namespaces inside: a seccomp filter (autograder/seccomp.py) on file descriptor 3, which
    # the `sh` in front of bwrap opens (bwrap reads the program from it and closes it).
    args += ["--seccomp", "3", "--"]
    if root:
        if not setpriv:
            raise SandboxUnavailable("setpriv (util-linux) is needed to drop root inside the sandbox")
        args += [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    args += [
        prlimit,
        f"--as={limits.memory}",
        f"--cpu={limits.cpu}",
        f"--nproc={limits.processes}",
        f"--nofile={limits.open_files}",
        f"--fsize={limits.file_size}",
        "--core=0",
        "--",
    ]
    from autograder import seccomp

    try:
        bpf = seccomp.write(run_dir)
    except seccomp.SeccompUnavailable as exc:
        raise SandboxUnavailable(f"the sandbox cannot refuse user namespaces here: {exc}") from exc
    return ["/bin/sh", "-c", 'exec "$@" 3<"$0"', bpf] + args + argv


def plain_command(argv: list[str], *, limits: Limits) -> list[str]:
    """--no-sandbox: only the resource limits, no isolation."""
    prlimit = tool("prlimit")
    if not prlimit:
        return argv
    return [prlimit, f"--as={limits.memory}", f"--cpu={limits.cpu}", f"--nofile={limits.open_files}",
            f"--fsize={limits.file_size}", "--core=0", "--"] + argv


def check_available() -> None:
    """Raise SandboxUnavailable with the reason when no sandbox can be built here."""
    bwrap = tool("bwrap")
    if not bwrap:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so submissions cannot be sandboxed; install it "
            "(Debian/Ubuntu: sudo apt-get install bubblewrap) or, for your own notebooks only, pass --no-sandbox"
        )
    if not tool("prlimit"):
        raise SandboxUnavailable("prlimit (util-linux) is not installed; install util-linux or pass --no-sandbox")
    if os.geteuid() == 0 and not tool("setpriv"):
        raise SandboxUnavailable("setpriv (util-linux) is not installed; install util-linux or pass --no-sandbox")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ag-check-") as tmp:
        t = Path(tmp)
        (t / "work").mkdir()
        (t / "conn").mkdir()
        if os.geteuid() == 0:
            os.chown(t / "work", BASE_UID, BASE_UID)
        os.chmod(t, 0o755)
        cmd = command([sys.executable, "-c", "import socket; socket.socket().bind(('127.0.0.1', 0))"],
                      work=t / "work", conn_dir=t / "conn", run_dir=t, limits=Limits())
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise SandboxUnavailable(f"bwrap is installed but cannot create a sandbox here: {proc.stderr.strip()[:300]}")
