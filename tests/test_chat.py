"""course.chat: the chat window's logic on real UDP peers (widgets built without a browser),
headless behaviour, a pluggable non-UDP transport, and clean shutdown."""
import queue
import threading

import pytest

from course import chat
from course.chat import ChatWindow, close_all, describe_sender, is_headless, parse_address, udp_chat_window
from course.deadline import wait_for
from course.serving import format_address
from course.udp import UdpChatPeer


@pytest.fixture(autouse=True)
def no_window_left():
    yield
    close_all()
    assert not [t for t in threading.enumerate() if t.name.startswith("chat-") and t.is_alive()]


def test_parse_address_accepts_loopback_host_port_only():
    assert parse_address(" 127.0.0.2:40312 ") == ("127.0.0.2", 40312)
    assert parse_address("[::1]:53") == ("::1", 53)
    for bad in ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "localhost:80", "x:y", ""]:
        with pytest.raises(ValueError):
            parse_address(bad)
    with pytest.raises(ValueError, match="not a loopback address"):
        parse_address("8.8.8.8:53")


def test_describe_sender():
    assert describe_sender(("127.0.0.2", 5)) == "127.0.0.2:5"
    assert describe_sender("bob") == "bob"


def test_headless_under_nbgrader_and_outside_a_kernel(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("COURSE_HEADLESS", raising=False)
    assert is_headless()  # pytest is no Jupyter kernel
    monkeypatch.setattr("IPython.get_ipython", lambda: type("Shell", (), {"kernel": object()})())
    assert not is_headless()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert is_headless()


def test_headless_window_starts_no_thread_but_still_sends():
    sent = []
    before = threading.active_count()
    with ChatWindow(sent.append, lambda t: ("never", "x"), title="t", headless=True) as window:
        assert window.widget is None and not window.receiving
        assert threading.active_count() == before
        assert window.submit("hi")
    assert sent == ["hi"] and window.lines == ["me: hi", "(closed)"]
    assert "headless" in window._repr_mimebundle_()["text/plain"]


def test_window_on_udp_peers_sends_receives_and_closes_them():
    alice = UdpChatPeer("127.0.0.2").start()
    bob = UdpChatPeer("127.0.0.3", reply=lambda text: f"bob got {text}").start()
    window = udp_chat_window(alice, bob.address, title="alice", closes=[alice, bob], headless=False)
    assert window.receiving and "application/vnd.jupyter.widget-view+json" in window._repr_mimebundle_()
    window.text.value = "hello bob"  # what Enter does (continuous_update=False)
    assert window.text.value == ""
    line = f"{format_address(bob.address)}: bob got hello bob"
    wait_for(lambda: line in window.lines, 2.0, lambda: f"the window never showed the reply; lines: {window.lines}")
    assert window.lines[0] == "me: hello bob"
    assert any("bob got hello bob" in o["text"] for o in window.log.outputs)
    assert bob.heard == [("hello bob", format_address(alice.address))]
    window.close()
    assert not window.receiving and window.text.disabled and window.send_button.disabled
    assert alice.sock.fileno() == -1 and bob.sock.fileno() == -1  # closes= closed them
    assert not window.submit("too late") and window.lines[-1] == "(closed: 'too late' not sent)"
    window.close()  # twice is fine


def test_destination_box_refuses_non_loopback_addresses():
    with UdpChatPeer("127.0.0.2") as alice, UdpChatPeer("127.0.0.3") as bob:
        window = udp_chat_window(alice, bob.address, headless=False)
        to_box = window.widget.children[1]
        to_box.value = "8.8.8.8:53"
        assert not window.submit("leak?")
        assert window.lines[-2:][0] == "me: leak?"
        assert window.lines[-1].startswith("(not sent: ValueError: no valid destination")
        to_box.value = format_address(bob.address)
        assert window.submit("ok")
        wait_for(lambda: bob.heard, 2.0, "bob heard nothing")
        assert not alice.events_of("send")[:-1]  # only the one valid line went out
        window.close()


def test_any_transport_plugs_in():
    inbox: queue.Queue = queue.Queue()
    sent = []

    def receive(timeout):
        try:
            return inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    with ChatWindow(sent.append, receive, title="tcp-like", headless=False, poll=0.02) as window:
        inbox.put(("over tcp", "server"))
        wait_for(lambda: "server: over tcp" in window.lines, 2.0, "line not shown")
    assert not window.receiving


def test_refused_and_closed_sockets_are_reported_not_raised():
    calls = {"n": 0}

    def receive(timeout):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionRefusedError(111, "Connection refused")
        raise OSError(9, "Bad file descriptor")

    window = ChatWindow(lambda text: None, receive, headless=False, poll=0.01)
    wait_for(lambda: not window.receiving, 2.0, "the receive thread did not stop on a closed socket")
    assert window.lines == ["(the other side is not listening: ICMP port unreachable)", "(receiving stopped: [Errno 9] Bad file descriptor)"]
    window.close()


def test_send_errors_are_logged():
    def send(text):
        raise ConnectionRefusedError(111, "Connection refused")

    with ChatWindow(send, None, headless=True) as window:
        assert not window.submit("x")
    assert window.lines[:2] == ["me: x", "(not sent: ConnectionRefusedError: [Errno 111] Connection refused)"]


def test_close_all_closes_every_open_window():
    closed = []

    class Thing:
        def close(self):
            closed.append(1)

    windows = [ChatWindow(lambda t: None, lambda t: None, headless=False, poll=0.01, closes=[Thing()]) for _ in range(3)]
    assert close_all() == 3
    assert closed == [1, 1, 1] and all(w.closed and not w.receiving for w in windows)
    assert close_all() == 0
    assert not chat._open_windows


@pytest.mark.parametrize("how", ["typed exit", "typed exit with spaces", "Close button"])
def test_tcp_chat_window_exit_does_what_close_does(monkeypatch, how):
    """Typing exit in the TCP chat window (tcp.chat_window) stops the receiving thread, disables the
    inputs, closes the connection and stops the server, exactly as the Close button does; the thread
    never reads a closed socket ('Bad file descriptor')."""
    from course import tcp

    servers = []
    real_start = tcp.TcpChatServer.start

    def start(self):
        servers.append(self)
        return real_start(self)

    monkeypatch.setattr(tcp.TcpChatServer, "start", start)
    monkeypatch.setattr(chat, "is_headless", lambda: False)
    window = tcp.chat_window()
    (server,) = servers
    assert window.receiving and not window.headless and window.ends_on == "exit"
    window.text.value = "hello"  # Enter
    wait_for(lambda: "server: got: hello" in window.lines, 2.0, lambda: f"no answer shown; lines: {window.lines}")
    if how == "Close button":
        window.close_button.click()
    else:
        window.text.value = "exit" if how == "typed exit" else "  exit \n"
    assert window.closed and not window.receiving
    assert window.text.disabled and window.send_button.disabled and window.close_button.disabled
    wait_for(lambda: server.events_of("close"), 2.0, lambda: f"the server never saw the client close; events: {server.events}")
    assert [e[2] for e in server.events_of("recv")] == [b"hello"]  # "exit" never travels
    assert server.stopping and not [t for t in server._threads if t.is_alive()]  # the window stopped its server
    assert not any("Bad file descriptor" in line or "receiving stopped" in line for line in window.lines), window.lines
    assert window.lines[-1] == "(closed)"
    assert not window.submit("after exit") and window.lines[-1] == "(closed: 'after exit' not sent)"
    assert not chat._open_windows


def test_window_ends_on_its_word_without_sending_it():
    sent = []
    with ChatWindow(sent.append, None, headless=True, ends_on="exit") as window:
        assert window.submit("exits")  # only the whole (trimmed) word ends the chat
        assert window.submit(" exit ")
        assert window.closed
    assert sent == ["exits"] and window.lines == ["me: exits", "me:  exit ", "(closed)"]
