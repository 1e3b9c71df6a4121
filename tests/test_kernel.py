"""course.kernel's connection-life additions: TCP_INFO, following a connection by its 4-tuple after
close, wait_for_state, StateRecorder, the TIME_WAIT timer; on real loopback sockets."""
from __future__ import annotations

import socket
import threading

import pytest

from course import kernel
from course.deadline import wait_for


@pytest.fixture
def pair():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname(), timeout=2)
    server, _ = listener.accept()
    yield listener, client, server
    for s in (client, server, listener):
        s.close()


def test_tcp_info_of_a_loopback_connection(pair):
    _, client, server = pair
    client.sendall(b"x" * 1000)
    assert server.recv(2000)
    info = kernel.tcp_info(client)
    assert info.state == "ESTABLISHED"
    assert 0 < info.snd_mss <= info.advmss <= 65495
    assert info.pmtu >= 65535 and info.rtt_us >= 0 and info.retransmits == 0
    assert kernel.TCP_INFO_SIZE == 104


def test_connection_of_names_both_ends(pair):
    listener, client, server = pair
    assert kernel.connection_of(client) == (client.getsockname(), client.getpeername())
    assert kernel.connection_of(listener) == (listener.getsockname(), ("0.0.0.0", 0))
    assert kernel.connection_of(socket.socket()) is None


def test_a_closed_client_is_followed_to_time_wait(pair):
    _, client, server = pair
    name = kernel.connection_of(client)
    client.close()
    assert kernel.wait_for_state(server, "CLOSE_WAIT") == "CLOSE_WAIT"
    server.close()
    kernel.wait_for_state(name, "TIME_WAIT")
    assert kernel.connection_state(name) == "TIME_WAIT"
    left = kernel.time_wait_remaining(name)
    assert left is not None and 0 < left <= kernel.TCP_TIMEWAIT_LEN


def test_an_open_socket_whose_connection_is_in_time_wait_reports_time_wait(pair):
    _, client, server = pair
    server.shutdown(socket.SHUT_WR)
    kernel.wait_for_state(client, "CLOSE_WAIT")
    name = kernel.connection_of(server)
    with kernel.StateRecorder(server=server) as rec:
        client.close()
        kernel.wait_for_state(name, "TIME_WAIT")
    assert rec.states("server")[-1] == "TIME_WAIT"  # followed by 4-tuple: the fd is open, the socket CLOSE
    assert kernel.tcp_state(server) == "CLOSE"  # the old function keeps its meaning
    assert kernel.connection_state(name) == "TIME_WAIT"


def test_wait_for_state_on_a_port_and_its_timeout_message(pair):
    listener, client, _ = pair
    port = listener.getsockname()[1]
    assert kernel.wait_for_state(port, "LISTEN") == "LISTEN"
    with pytest.raises(TimeoutError, match=r"did not reach LAST_ACK within 0.05 s; the kernel showed ESTABLISHED"):
        kernel.wait_for_state(client, "LAST_ACK", timeout=0.05)
    with pytest.raises(ValueError, match="not a TCP state"):
        kernel.wait_for_state(client, "CLOSED")


def test_state_recorder_records_changes_and_stops_its_thread(pair):
    _, client, server = pair
    with kernel.StateRecorder(client=client, server=server) as rec:
        client.close()
        wait_for(lambda: "CLOSE_WAIT" in rec.states("server"), 2.0, "the recorder never saw CLOSE_WAIT")
        server.close()
        kernel.wait_for_state(rec._follow["client"].conn, "TIME_WAIT")
    assert rec.states("client")[0] == "ESTABLISHED" and rec.states("client")[-1] == "TIME_WAIT"
    assert "CLOSE_WAIT" in rec.states("server") and rec.states("server")[-1] == "CLOSE"
    assert not any(t.name == "StateRecorder" and t is rec._thread for t in threading.enumerate())
    spans = rec.timeline()["client"]
    assert all(a <= b for a, _, _ in spans for b in [spans[-1][1]])


def test_state_recorder_on_a_port_sees_every_socket_of_it(pair):
    listener, client, server = pair
    port = listener.getsockname()[1]
    with kernel.StateRecorder(port=port) as rec:
        client.close()
        wait_for(lambda: any("CLOSE_WAIT" in rec.states(l) for l in rec.labels()), 2.0, "no CLOSE_WAIT recorded")
    labels = rec.labels()
    assert any(l.endswith("0.0.0.0:0") for l in labels)
    assert any("CLOSE_WAIT" in rec.states(l) for l in labels)


def test_state_recorder_stops_by_itself_after_max_seconds(pair):
    _, client, _ = pair
    rec = kernel.StateRecorder(client=client, max_seconds=0.05)
    rec.__enter__()
    rec._thread.join(2.0)
    assert not rec._thread.is_alive()
    rec.__exit__(None, None, None)


def test_note_wins_over_a_stale_sample(pair):
    _, client, _ = pair
    with kernel.StateRecorder(client=client, interval=0.1) as rec:
        rec.note("client", "SYN_SENT")
    assert rec.states("client")[-1] in ("SYN_SENT", "ESTABLISHED")


def test_ss_lists_the_listener(pair):
    listener, _, _ = pair
    out = kernel.ss(listener.getsockname()[1])
    assert "LISTEN" in out or "not available" in out


def test_loopback_mtu_from_the_ioctl_matches_sys():
    mtu = kernel.interface_mtu("lo")
    assert mtu >= 1500
    try:
        assert mtu == int(open("/sys/class/net/lo/mtu").read())
    except FileNotFoundError:
        pass
    with pytest.raises(OSError):
        kernel.interface_mtu("no-such-if0")


def test_without_sock_diag_the_proc_fallback_gives_the_same_states(pair, monkeypatch):
    from course.kernel import window

    monkeypatch.setattr(window, "_CHOSEN", window.ProcWindow())  # as in a sandbox without NETLINK_SOCK_DIAG
    listener, client, server = pair
    name = kernel.connection_of(client)
    client.close()
    kernel.wait_for_state(server, "CLOSE_WAIT")
    server.close()
    assert kernel.wait_for_state(name, "TIME_WAIT") == "TIME_WAIT"
    assert kernel.wait_for_state(listener.getsockname()[1], "TIME_WAIT") == "TIME_WAIT"
    assert window.current().name == "proc"


def test_sock_diag_and_proc_agree_on_a_port(pair):
    listener, client, server = pair
    port = listener.getsockname()[1]
    from course.kernel import window

    by_diag = sorted((e.local, e.remote, e.state) for e in window.DiagWindow().tcp_sockets() if port in (e.local[1], e.remote[1]))
    assert by_diag == kernel.states_on_port(port)


def test_thread_waits_on_io_tells_a_socket_wait_from_a_lock_wait():
    import socket as _socket
    import threading as _threading

    from course.deadline import wait_for as _wait_for
    from course.kernel import thread_waits_on_io

    a, b = _socket.socketpair()
    lock = _threading.Lock()
    lock.acquire()
    readers = _threading.Thread(target=a.recv, args=(10,), daemon=True)
    locked = _threading.Thread(target=lock.acquire, daemon=True)
    try:
        readers.start()
        locked.start()
        assert _wait_for(lambda: thread_waits_on_io(readers), 5, "the reader never blocked in recv") is True
        assert thread_waits_on_io(locked) is False  # waits on a lock (futex), not on I/O
    finally:
        b.send(b"x")
        lock.release()
        readers.join(5)
        locked.join(5)
        a.close()
        b.close()
    assert thread_waits_on_io(readers) is None  # ended


def test_the_window_is_chosen_once_and_both_windows_agree_on_a_connection(pair):
    from course.kernel import window

    first = window.current()
    assert window.current() is first and first.name in ("sock_diag", "proc")
    listener, client, server = pair
    name = kernel.connection_of(client)
    assert window.DiagWindow().lookup(name) == window.ProcWindow().lookup(name)
    assert window.ProcWindow().lookup(name).state == "ESTABLISHED"


def test_the_proc_reader_reads_the_time_wait_timer(pair):
    listener, client, server = pair
    name = kernel.connection_of(client)
    client.close()
    kernel.wait_for_state(server, "CLOSE_WAIT")
    server.close()
    kernel.wait_for_state(name, "TIME_WAIT")
    entry = next(e for e in kernel.all_sockets(("tcp",)) if (e.local, e.remote) == name)
    assert entry.timer == "time_wait" and 0 < entry.timer_seconds <= kernel.TCP_TIMEWAIT_LEN
