"""`python -m course`: a reference peer that nc (here: a plain socket) can talk to."""
import socket
import subprocess
import sys


from course.cli import load_peers, main
from course.deadline import Deadline

REQUIRED = {"tcp-echo", "udp-echo"}


def test_list_names_the_peers(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in REQUIRED:
        assert name in out


def test_every_registered_peer_starts_on_port_zero_and_stops():
    for name, cls in load_peers().items():
        with cls() as server:
            assert server.port > 0, name


def test_unknown_peer_and_non_loopback_host_are_refused(capsys):
    assert main(["serve", "no-such-peer", "--seconds", "0.1"]) == 2
    assert "no reference peer named 'no-such-peer'" in capsys.readouterr().err
    assert main(["serve", "tcp-echo", "--host", "0.0.0.0", "--seconds", "0.1"]) == 2
    assert "0.0.0.0 is not a loopback address" in capsys.readouterr().err


def test_serve_prints_the_address_it_got_and_answers():
    proc = subprocess.Popen(
        [sys.executable, "-m", "course", "serve", "tcp-echo", "--seconds", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # the first line names the address; bounded by --seconds
        assert line.startswith("tcp-echo (tcp) listening on 127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split(";")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"hello from nc\n")
            assert c.recv(100) == b"hello from nc\n"
    finally:
        proc.terminate()
        proc.wait(timeout=Deadline(10).remaining())
    assert proc.returncode is not None
