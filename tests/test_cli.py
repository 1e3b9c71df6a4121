"""`python -m course`: the peer table, list, serve as a newcomer uses it (nc- and socat-like sessions
with long pauses, Ctrl-C, bad arguments, peer flags), and the netlab dispatch."""
import ast
import inspect
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from contextlib import contextmanager
from pathlib import Path

import pytest

from course import cli
from course.cli import build_parser, load_peers, main
from course.deadline import Deadline
from course.peers import PEERS, REPLIES
from course.serving import LoopbackServer

REPO = Path(__file__).resolve().parent.parent
REQUIRED = {"tcp-echo", "udp-echo", "tcp-sum-seed002", "udp-sum-seed002", "tcp-chat-seed004"}
CTRL_C_LIMIT = 0.5  # seconds: Ctrl-C stops a peer within this (the promise)
CTRL_C_MARGIN = 1.0  # seconds more for a loaded machine (process exit, the test's own polling)


def run(*args: str, timeout: float = 60.0, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout, **kw)


def read_line(stream, timeout: float) -> str:
    """One line from a child's pipe, or '' if none comes within `timeout` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


@contextmanager
def serving(*args: str, stdin=None):
    """`python -m course serve ARGS` in a child process: yields (process, (host, port)); stops it
    with Ctrl-C (SIGINT) at the end, as a person would."""
    proc = subprocess.Popen([sys.executable, "-m", "course", "serve", *args], cwd=REPO, text=True, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = read_line(proc.stdout, 30)
        assert " listening on 127.0.0.1:" in line, (line, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
        port = int(line.split("127.0.0.1:")[1].split(";")[0])
        yield proc, ("127.0.0.1", port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def recv_until(sock: socket.socket, ending: bytes, timeout: float = 5.0) -> bytes:
    deadline, got = Deadline(timeout), b""
    while not got.endswith(ending) and not deadline.expired():
        sock.settimeout(max(0.01, deadline.remaining()))
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


# ----------------------------------------------------------------------------------------------
# The table, list, and what list imports
# ----------------------------------------------------------------------------------------------
def test_list_names_every_peer_with_a_whole_sentence_and_its_flags(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in REQUIRED | set(PEERS):
        assert f"\n{name} " in out
    assert "unless --idle S is given" in out
    assert "[--reply {none,echo,upper,got}]" in out and "[--script TEXT [TEXT ...]]" in out
    for entry in PEERS.values():
        assert entry["does"] in out and not entry["does"].endswith((" when given", ","))


def test_every_entry_of_the_table_is_a_server_class_of_its_module_taking_its_flags():
    """The table is the one source of the peers' names: each entry names a class defined in its
    module (not an import of it), a LoopbackServer of the entry's transport, whose constructor
    takes every flag's parameter; no class serves under two names."""
    classes = load_peers()
    assert set(classes) == set(PEERS) and REQUIRED <= set(PEERS)
    assert len({id(cls) for cls in classes.values()}) == len(classes)
    for name, cls in classes.items():
        entry, params = PEERS[name], inspect.signature(cls.__init__).parameters
        assert isinstance(cls, type) and issubclass(cls, LoopbackServer), f"{name}: {cls!r} is not a LoopbackServer"
        assert (cls.__module__, cls.__name__) == (entry["module"], entry["class"]), name
        assert cls.sock_type == {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}[entry["transport"]], name
        assert entry["transport"] in ("tcp", "udp") and entry["does"] and entry["does"][0].islower()
        for option in entry["options"]:
            assert option["param"] in params, f"{name}: {option['flag']} names no parameter of {cls.__name__}"
            assert option["flag"].startswith("--") and option["help"]
            if option.get("convert"):
                assert set(option["choices"]) <= set(REPLIES)


def test_list_imports_no_lesson_module_and_no_matplotlib():
    result = run("-X", "importtime", "-m", "course", "list")
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "course.peers" in imported and "course.cli" in imported
    assert not [m for m in imported if m.split(".")[0] in ("matplotlib", "numpy", "IPython")]
    assert {m for m in imported if m.startswith("course")} <= {"course", "course.errors", "course.peers", "course.cli"}


def test_serve_imports_only_the_module_of_its_peer():
    code = ("import sys, course.cli as c; c.main(['serve', 'udp-echo', '--seconds', '0.01']); "
            "print(sorted(m for m in sys.modules if m.startswith('course.')))")
    result = run("-c", code)
    assert result.returncode == 0, result.stderr
    modules = ast.literal_eval(result.stdout.splitlines()[-1])
    assert "course.udp" in modules and "course.tcp" not in modules and "course.stream_peers" not in modules
    assert not [m for m in modules if "drawing" in m]


def test_every_peer_starts_on_port_zero_and_stops():
    for name, cls in load_peers().items():
        with cls() as server:
            assert server.port > 0, name


# ----------------------------------------------------------------------------------------------
# Bad arguments: one line on stderr, exit status 2
# ----------------------------------------------------------------------------------------------
def test_unknown_peer_and_non_loopback_host_are_refused(capsys):
    assert main(["serve", "no-such-peer", "--seconds", "0.1"]) == 2
    assert "no reference peer named 'no-such-peer'" in capsys.readouterr().err
    assert main(["serve", "tcp-echo", "--host", "0.0.0.0", "--seconds", "0.1"]) == 2
    assert "0.0.0.0 is not a loopback address" in capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["serve", "tcp-echo", "--port", "99999"], "99999 is not a port number"),
    (["serve", "tcp-echo", "--port", "-1"], "-1 is not a port number"),
    (["serve", "tcp-echo", "--port", "x"], "'x' is not a port number"),
    (["serve", "udp-sum", "--seconds", "-3"], "-3 is not a positive number of seconds"),
    (["serve", "udp-chat", "--reply", "shout"], "invalid choice: 'shout'"),
    (["serve", "udp-echo", "--idle", "3"], "unrecognized arguments: --idle 3"),
    (["serve", "tcp-sum-seed002", "--deadline", "-1"], "-1 is not 0 or a positive number of seconds"),
    (["serve", "no-such-peer"], "no reference peer named 'no-such-peer'"),
])
def test_a_bad_argument_is_one_line_and_exit_status_2(args, words):
    result = run("-m", "course", *args)
    assert result.returncode == 2, result
    assert result.stdout == "" and result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------------------------
# Sessions as a newcomer has them, with nc and socat
# ----------------------------------------------------------------------------------------------
def test_serve_prints_the_address_it_got_and_answers():
    with serving("tcp-echo") as (proc, address):
        with socket.create_connection(address, timeout=5) as c:
            c.sendall(b"hello from nc\n")
            assert recv_until(c, b"\n") == b"hello from nc\n"


def test_sessions_with_a_pause_of_over_5_s_between_lines():
    """nc: type a line, think for 5.5 s, type another (the peers used to close after 5 s of silence).
    socat: the same, then the end of input (socat shuts its sending side) and read until the peer closes.
    The seed's own sum client: unframed requests on one long connection."""
    with serving("tcp-sum") as (_, sum_address), serving("tcp-echo") as (_, echo_address), \
            serving("tcp-chat-seed004", "--script", "hi, who is there?") as (_, chat_address), \
            serving("tcp-sum-seed002") as (_, seed_address), \
            socket.create_connection(sum_address, timeout=5) as nc, \
            socket.create_connection(echo_address, timeout=5) as socat, \
            socket.create_connection(chat_address, timeout=5) as chat, \
            socket.create_connection(seed_address, timeout=5) as seed:
        nc.sendall(b'{"A":7,"B":4}\n')
        assert recv_until(nc, b"\n") == b'{"Sum":11}\n'
        socat.sendall(b"first line\n")
        assert recv_until(socat, b"\n") == b"first line\n"
        chat.sendall(b"hello")  # seed 004's client: the trimmed line, no newline
        assert recv_until(chat, b"?") == b"hi, who is there?"
        seed.sendall(b'{"A":7,"B":4}')  # seed 002's client: no newline
        assert recv_until(seed, b"}") == b'{"Sum":11}'

        time.sleep(5.5)  # the point of the test: a person pausing longer than the old 5 s limit

        nc.sendall(b'{"A":1,"B":2}\n')
        assert recv_until(nc, b"\n") == b'{"Sum":3}\n'
        socat.sendall(b"second line\n")
        socat.shutdown(socket.SHUT_WR)  # socat at the end of its input
        assert recv_until(socat, b"\n", 5) == b"second line\n"
        assert recv_until(socat, b"never", 5) == b""  # the peer saw the end and closed
        chat.sendall(b"me")
        assert recv_until(chat, b"me") == b"got: me"
        seed.sendall(b'{"A":1,"B":2}')
        assert recv_until(seed, b"}") == b'{"Sum":3}'


def test_seed004_chat_with_a_person_answering_at_the_terminal():
    """--operator: seed 004's server as the seed runs it, a person typing each answer (here, a pipe)."""
    with serving("tcp-chat-seed004", "--operator", stdin=subprocess.PIPE) as (proc, address), \
            socket.create_connection(address, timeout=5) as chat:
        chat.sendall(b"hello")  # seed 004's client: the trimmed line, no newline
        deadline, shown = Deadline(10), ""
        while "Access Info" not in shown and not deadline.expired():
            shown = read_line(proc.stdout, deadline.remaining())
        assert shown == "Access Info :  hello\n"
        proc.stdin.write("  hi, who is there?  \n")  # trimmed, as strings.TrimSpace does
        proc.stdin.flush()
        assert recv_until(chat, b"?") == b"hi, who is there?"
        chat.sendall(b"me")
        proc.stdin.write("exit\n")  # the operator's exit closes the chat; it never travels
        proc.stdin.flush()
        assert recv_until(chat, b"never") == b""


def test_idle_sets_a_limit_from_the_command_line():
    with serving("tcp-echo", "--idle", "0.5") as (proc, address):
        with socket.create_connection(address, timeout=5) as c:
            start = time.monotonic()
            assert recv_until(c, b"never", 10) == b""  # the peer closed the silent connection
            assert 0.4 <= time.monotonic() - start < 5


def test_udp_peers_with_nc_u_and_their_flags():
    with serving("udp-chat", "--reply", "upper") as (_, chat), serving("udp-sum-seed002") as (_, seed), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(5)
        c.sendto(b"hi there\n", chat)  # nc -u sends the line with its newline
        assert c.recvfrom(100) == (b"HI THERE\n", chat)
        c.sendto(b'{"A":7,"B":4}', seed)
        assert c.recvfrom(100) == (b'{"Sum":11}', seed)


def test_tcp_chat_script_flag():
    with serving("tcp-chat", "--script", "hello there", "exit") as (_, address):
        with socket.create_connection(address, timeout=5) as c:
            c.sendall(b"hi\n")
            assert recv_until(c, b"\n") == b"hello there\n"
            c.sendall(b"bye\n")
            assert recv_until(c, b"never") == b""  # the operator's exit closed the chat


def test_flags_become_constructor_arguments():
    parser = build_parser()
    args = parser.parse_args(["serve", "udp-lossy", "--drop", "0", "2", "--answer", "echo", "--stray"])
    assert cli._constructor_kwargs("udp-lossy", args) == {"drop": [0, 2], "answer": "echo", "stray": True}
    args = parser.parse_args(["serve", "udp-lossy", "--drop", "all"])
    assert cli._constructor_kwargs("udp-lossy", args) == {"drop": "all"}
    args = parser.parse_args(["serve", "stream-chunks", "--payload", "a\\nb\\xff", "--keep-open"])
    assert cli._constructor_kwargs("stream-chunks", args) == {"payload": b"a\nb\xff", "keep_open": True}
    args = parser.parse_args(["serve", "stream-framed-echo", "--no-echo"])
    assert cli._constructor_kwargs("stream-framed-echo", args) == {"echo": False}
    args = parser.parse_args(["serve", "tcp-chat-seed004", "--reply", "upper"])
    assert cli._constructor_kwargs("tcp-chat-seed004", args)["reply"]("abc") == "ABC"
    for name in PEERS:  # every peer accepts what its flags give, with no flag at all too
        assert cli._constructor_kwargs(name, parser.parse_args(["serve", name])) == {}


# ----------------------------------------------------------------------------------------------
# Ctrl-C
# ----------------------------------------------------------------------------------------------
def test_ctrl_c_stops_within_half_a_second_with_a_client_connected_and_no_traceback():
    with serving("tcp-sum") as (proc, address), socket.create_connection(address, timeout=5) as c:
        c.sendall(b'{"A":7,"B":4}\n')
        assert recv_until(c, b"\n") == b'{"Sum":11}\n'
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        took = time.monotonic() - start
        assert took < CTRL_C_LIMIT + CTRL_C_MARGIN, f"Ctrl-C took {took:.3f} s"
        assert proc.returncode == 0
        assert proc.stdout.read().strip() == "stopped"
        assert "Traceback" not in proc.stderr.read()
        assert recv_until(c, b"never") == b""


def test_ctrl_c_while_the_lesson_module_loads_exits_quietly():
    """The handler is installed before anything heavy is imported: interrupt just after course.cli
    was imported (the lesson module is loading, or the peer has just started)."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "course", "serve", "stream-chunks"], cwd=REPO,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # -X importtime writes many lines at once: read them in a thread (select on a buffered
        # text pipe misses lines already in its buffer)
        seen: list[str] = []
        reached = threading.Event()

        def read_imports():
            for line in proc.stderr:
                seen.append(line)
                if line.rstrip().endswith("| course.cli"):
                    reached.set()
                    return

        reader = threading.Thread(target=read_imports, daemon=True)
        reader.start()
        assert reached.wait(30), f"course.cli was never imported: {seen[-5:]}"
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        took = time.monotonic() - start
        err = proc.stderr.read()
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
        assert proc.returncode in (0, 130)
        assert took < CTRL_C_LIMIT + CTRL_C_MARGIN, f"Ctrl-C took {took:.3f} s"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


# ----------------------------------------------------------------------------------------------
# python -m course netlab
# ----------------------------------------------------------------------------------------------
def test_netlab_is_dispatched_to_its_own_main(monkeypatch):
    calls = []
    fake = types.ModuleType("course.netlab.__main__")
    fake.main = lambda argv: calls.append(argv) or 3
    monkeypatch.setitem(sys.modules, "course.netlab", types.ModuleType("course.netlab"))
    monkeypatch.setitem(sys.modules, "course.netlab.__main__", fake)
    assert main(["netlab", "up", "--help"]) == 3
    assert calls == [["up", "--help"]]


def test_netlab_missing_is_one_line_and_exit_status_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "course.netlab", None)  # as if the package were not there
    assert main(["netlab", "up"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "course/netlab" in err and "is not in this copy" in err


def test_python_dash_m_course_netlab_without_the_package_or_with_it():
    result = run("-m", "course", "netlab", "--help")
    if (REPO / "course" / "netlab" / "__main__.py").exists():
        assert "Traceback" not in result.stderr
    else:
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
