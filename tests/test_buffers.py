"""course.buffers: the queue counters, the buffer sizes and the fill measurement, on real loopback
connections. Relations only, never absolute figures: they depend on the kernel."""
import socket
import subprocess
import sys

import pytest

from course import buffers, kernel
from course.buffers import (
    QueueWatch,
    buffer_sizes,
    fill_until_blocked,
    measure_fill,
    queues,
    recv_queue,
    send_queue,
    set_buffer_sizes,
    tcp_pair,
)
from course.deadline import wait_for


def test_recv_queue_counts_unread_bytes_and_recv_empties_it():
    with tcp_pair() as (a, b):
        assert queues(b) == {"recv_queue": 0, "send_queue": 0}
        a.sendall(b"x" * 1000)
        wait_for(lambda: recv_queue(b) == 1000, 2.0, "1000 bytes did not arrive")
        assert len(b.recv(400)) == 400
        assert recv_queue(b) == 600


def test_send_queue_holds_what_the_receiver_cannot_take():
    with tcp_pair(sndbuf=65536, rcvbuf=4096) as (a, b):
        accepted, _ = fill_until_blocked(a)
        wait_for(lambda: send_queue(a) > 0, 2.0, "nothing in the send queue")
        assert 0 < recv_queue(b) < accepted
        assert send_queue(a) <= accepted


def test_queues_agree_with_proc_net_tcp():
    with tcp_pair(rcvbuf=4096) as (a, b):
        fill_until_blocked(a)

        def same():
            ea, eb = kernel.entry_of(a), kernel.entry_of(b)
            return ea.tx_queue == send_queue(a) and eb.rx_queue == recv_queue(b)

        wait_for(same, 2.0, "/proc/net/tcp and the ioctls disagree")


def test_linux_doubles_the_buffer_size_you_set():
    with socket.socket() as s:
        sizes = set_buffer_sizes(s, sndbuf=8192, rcvbuf=10000)
    assert sizes == {"SO_SNDBUF": 16384, "SO_RCVBUF": 20000}


def test_linux_caps_the_size_at_wmem_max_and_rmem_max_before_doubling():
    caps = buffers.kernel_defaults()
    assert caps["wmem_max"] > 0 and caps["rmem_max"] > 0
    with socket.socket() as s:
        sizes = set_buffer_sizes(s, sndbuf=caps["wmem_max"] + 1000, rcvbuf=caps["rmem_max"] * 4)
    assert sizes == {"SO_SNDBUF": 2 * caps["wmem_max"], "SO_RCVBUF": 2 * caps["rmem_max"]}
    assert buffers.expected_size(caps["wmem_max"] + 1000, "SO_SNDBUF") == 2 * caps["wmem_max"]
    assert buffers.expected_size(8192, "SO_RCVBUF") == 16384


def test_queue_constants_come_from_termios():
    import termios

    assert buffers.FIONREAD == termios.FIONREAD == termios.TIOCINQ
    assert buffers.SIOCOUTQ == termios.TIOCOUTQ


def test_buffer_sizes_of_a_pair():
    with tcp_pair(sndbuf=8192, rcvbuf=8192) as (a, b):
        assert buffer_sizes(a)["SO_SNDBUF"] == 16384
        assert buffer_sizes(b)["SO_RCVBUF"] == 16384


def test_kernel_defaults_read_proc():
    d = buffers.kernel_defaults()
    assert len(d["tcp_wmem"]) == 3 and d["tcp_wmem"][0] <= d["tcp_wmem"][1] <= d["tcp_wmem"][2]


def test_send_without_blocking_returns_none_when_full():
    with tcp_pair(sndbuf=4096, rcvbuf=4096) as (a, b):
        fill_until_blocked(a)
        assert buffers.send_without_blocking(a, b"more") is None
        assert a.getblocking() is False


def test_fill_until_blocked_refuses_a_reader_that_keeps_up():
    with tcp_pair() as (a, b):
        with pytest.raises(buffers.SetupError):
            fill_until_blocked(a, chunk=100, limit=1000)


def test_measure_fill_accounts_for_the_bytes_and_grows_with_sndbuf():
    small = measure_fill(sndbuf=4096, rcvbuf=4096)
    large = measure_fill(sndbuf=1_048_576, rcvbuf=4096)
    assert small.sndbuf == 8192 and large.sndbuf == buffers.expected_size(1_048_576, "SO_SNDBUF")
    assert large.accepted > small.accepted > 0
    for f in (small, large):
        # every accepted byte is in one queue or the other (a byte not yet acknowledged in both)
        assert f.in_send_queue + f.in_recv_queue == f.accepted  # measure_fill waits until they settle
        assert f.in_recv_queue <= f.accepted


def test_fill_completely_leaves_the_sender_unwritable():
    import selectors

    with tcp_pair(sndbuf=8192, rcvbuf=8192) as (a, b), selectors.DefaultSelector() as selector:
        total = buffers.fill_completely(a, b)
        assert total > 0 and buffers.settled(a, b, total)
        selector.register(a, selectors.EVENT_WRITE)
        assert selector.select(0) == []
        with pytest.raises(BlockingIOError):
            a.send(b"x")


def test_measure_fills_returns_plain_rows_and_plots_them():
    import matplotlib

    matplotlib.use("Agg")
    rows = buffers.measure_fills(sndbufs=(None, 4096), rcvbufs=(None, 4096))
    assert len(rows) == 4 and all(isinstance(r, dict) for r in rows)
    assert {(r["sndbuf_set"], r["rcvbuf_set"]) for r in rows} == {(None, None), (4096, None), (None, 4096), (4096, 4096)}
    ax = buffers.plot_fills(rows)
    assert len(ax.lines) == 3  # one line per SO_RCVBUF setting and the diagonal


def test_queue_watch_sees_the_queues_fill_and_drain():
    import matplotlib

    matplotlib.use("Agg")
    with tcp_pair(sndbuf=65536, rcvbuf=65536) as (a, b), QueueWatch(a, b, interval=0.005) as watch:
        accepted, _ = fill_until_blocked(a)
        wait_for(lambda: len(watch.samples) > 3 and watch.samples[-1][2] > 0, 2.0, "no sample saw the receiver's queue")
        read = 0
        while read < accepted:
            read += len(b.recv(65536))
    assert max(s[1] for s in watch.samples) > 0 and max(s[2] for s in watch.samples) > 0
    assert watch.samples[-1][2] == 0
    assert len(watch.plot().lines) == 2


def test_tcp_pair_closes_everything():
    with tcp_pair() as (a, b):
        pass
    assert a.fileno() == -1 and b.fileno() == -1


def test_command_line_prints_the_table():
    out = subprocess.run(
        [sys.executable, "-m", "course.buffers", "--sndbuf", "0", "4096", "--rcvbuf", "4096"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert "kernel defaults" in out and out.count("\n") == 4
