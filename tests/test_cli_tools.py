"""The command-line peers with the tools a newcomer reaches for: nc and socat, typing a line, waiting
longer than the peers' 5 s (the old idle limit), typing another (issue #12). Real nc and socat
processes; `make test` installs them (netcat-openbsd, socat). Under CI a missing tool is a failure."""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import threading

import pytest

from course.deadline import Deadline
from test_cli import serving

PAUSE = 5.5  # seconds between two lines: longer than the peers' io_timeout of 5 s, the point of the test


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; make test installs it (apt-get install netcat-openbsd socat)")
        pytest.skip(f"{name} is not installed")
    return path


def read_reply(proc: subprocess.Popen, line: bool, timeout: float = 10.0) -> bytes:
    """What the client printed (its stdout) within `timeout` s: a whole line, or (a datagram's
    reply, which the seed's peer sends without a newline) what one read gives."""
    deadline, got = Deadline(timeout), b""
    while not deadline.expired():
        ready, _, _ = select.select([proc.stdout], [], [], deadline.remaining())
        if not ready:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        got += chunk
        if not line or got.endswith(b"\n"):
            return got
    raise AssertionError(f"{proc.args[0]} printed {got!r} within {timeout} s, not a whole reply")


def session(client_argv: list[str], lines: list[bytes], line_replies: bool = True) -> list[bytes]:
    """Type each line into the client, read its reply, pausing PAUSE s between lines."""
    with subprocess.Popen(client_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        replies = []
        try:
            for i, line in enumerate(lines):
                if i:
                    threading.Event().wait(PAUSE)
                proc.stdin.write(line)
                proc.stdin.flush()
                replies.append(read_reply(proc, line_replies))
        finally:
            proc.kill()
        return replies


@pytest.mark.timeout(60)
def test_nc_talks_to_tcp_echo_with_a_pause_longer_than_five_seconds():
    nc = tool("nc")
    with serving("tcp-echo") as (_, (host, port)):
        replies = session([nc, "-q", "1", host, str(port)], [b"hello\n", b"after a pause\n"])
    assert replies == [b"hello\n", b"after a pause\n"]


@pytest.mark.timeout(60)
def test_socat_talks_to_tcp_sum_with_a_pause_longer_than_five_seconds():
    socat = tool("socat")
    with serving("tcp-sum") as (_, (host, port)):
        replies = session([socat, "-", f"TCP:{host}:{port}"], [b'{"A":7,"B":4}\n', b'{"A":-20,"B":5}\n'])
    assert replies == [b'{"Sum":11}\n', b'{"Sum":-15}\n']


@pytest.mark.timeout(60)
def test_socat_sends_the_seeds_udp_request_to_the_seed_faithful_peer():
    socat = tool("socat")
    with serving("udp-sum-seed002") as (_, (host, port)):
        # the seed's client sends {"A":7,"B":4} without a newline or an id; socat sends each line
        # typed as one datagram (with its newline, which Go's json.Unmarshal also skips)
        replies = session([socat, "-", f"UDP:{host}:{port}"], [b'{"A":7,"B":4}\n'], line_replies=False)
    assert replies == [b'{"Sum":11}']
