"""A chat window for a notebook: seed 001's UDP chat without input().

Seed 001's chat asks `input()` for a menu choice, then blocks in `recvfrom` until a message comes.
A notebook cannot work like that: `input()` holds the kernel until someone types (and under
nbgrader, or with no browser attached, nobody ever will), and a cell blocked in `recvfrom` runs
forever, so no other cell can run. Here the two halves are separated the way a GUI separates them:

- sending happens in the widget callback (Enter in the text box, or the Send button), which calls
  `send(text)` and returns at once;
- receiving happens in a background thread that calls `receive(timeout)` with a short timeout
  in a loop, appends what arrives to the log, and stops when the window is closed.

The transport is pluggable: any `send(text)` callable and any `receive(timeout)` callable that
returns `(text, sender)` or None after at most `timeout` seconds. `udp_chat_window(peer, to)` binds
a window to a UDP peer (anything with `send(text, to)`, `receive(timeout)` and `address`, such as
`course.udp.UdpChatPeer` or the learner's `ChatPeer`); a TCP chat can pass its own callables.

Headless (NBGRADER_EXECUTION set, COURSE_HEADLESS set, or not inside a Jupyter kernel), a window
starts no thread and shows a one-line note instead of widgets; `submit()` still sends, so that code
around it keeps working. Every window is a context manager; `close()` (or the Close button) stops
the thread, disables the inputs, and closes what it was given in `closes` (e.g. the peer's socket);
`close_all()` closes every window still open. A window made with `ends_on="exit"` treats that line
as seed 004 does: typing it (spaces around it trimmed, as `strings.TrimSpace` does) sends nothing
and closes the window exactly as the Close button does.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

from course.serving import JOIN_TIMEOUT, format_address, loopback_host

__all__ = [
    "POLL",
    "MAX_LINES",
    "Receive",
    "close_all",
    "is_headless",
    "describe_sender",
    "parse_address",
    "ChatWindow",
    "udp_chat_window",
]

POLL = 0.1  # seconds each receive() call may wait: how quickly a closed window's thread ends
MAX_LINES = 200  # the log keeps the last lines only

Receive = Callable[[float], "tuple[str, Any] | None"]

_open_windows: list["ChatWindow"] = []


def close_all() -> int:
    """Close every window still open (a notebook cell calls this first, so that re-running it
    never leaves an old window's thread or peer behind). Returns how many were closed."""
    windows = list(_open_windows)
    for window in windows:
        window.close()
    return len(windows)


def is_headless() -> bool:
    """True when nobody can see or use a widget: under nbgrader, or outside a Jupyter kernel."""
    if os.environ.get("NBGRADER_EXECUTION") or os.environ.get("COURSE_HEADLESS"):
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or getattr(shell, "kernel", None) is None


def describe_sender(sender: Any) -> str:
    """'127.0.0.2:40312' for an address tuple; str() of anything else (a TCP chat's name)."""
    if isinstance(sender, tuple) and len(sender) >= 2:
        return format_address(sender)
    return str(sender)


def parse_address(text: str) -> tuple[str, int]:
    """'127.0.0.2:40312' -> ('127.0.0.2', 40312); ValueError for anything else or a
    non-loopback host (the course never sends outside this machine)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port, e.g. 127.0.0.2:40312")
    try:
        loopback_host(host)
    except Exception as exc:
        raise ValueError(str(exc)) from None
    return host, int(port)


class ChatWindow:
    """A log, a text box, a Send and a Close button, bound to send(text) and receive(timeout)."""

    def __init__(
        self,
        send: Callable[[str], Any],
        receive: Receive | None,
        *,
        title: str = "chat",
        header: list | None = None,
        on_close: Callable[[], Any] | None = None,
        closes: tuple | list = (),
        headless: bool | None = None,
        poll: float = POLL,
        ends_on: str | None = None,
    ):
        self.send, self.receive, self.title = send, receive, title
        self.ends_on = ends_on
        self.on_close = on_close
        self.closes = list(closes)
        self.headless = is_headless() if headless is None else headless
        self.poll = poll
        self.lines: list[str] = []
        self.closed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.widget = None
        _open_windows.append(self)
        if not self.headless:
            self._build(header or [])
            if receive is not None:
                self._thread = threading.Thread(target=self._receive_loop, name=f"chat-{title}", daemon=True)
                self._thread.start()

    # -- widgets ---------------------------------------------------------------------------
    def _build(self, header: list) -> None:
        import ipywidgets as w

        self.log = w.Output(layout=w.Layout(height="160px", overflow="auto", border="1px solid #ccc"))
        # continuous_update=False: the value changes on Enter (or leaving the box), not per key
        self.text = w.Text(placeholder="type a line, then Enter", continuous_update=False, layout=w.Layout(width="60%"))
        self.send_button = w.Button(description="Send", button_style="primary")
        self.close_button = w.Button(description="Close")
        self.text.observe(lambda change: change["new"] and self._submit_from_box(), names="value")
        self.send_button.on_click(lambda _: self._submit_from_box())
        self.close_button.on_click(lambda _: self.close())
        self.widget = w.VBox([w.HTML(f"<b>{self.title}</b>"), *header, self.log, w.HBox([self.text, self.send_button, self.close_button])])

    def _submit_from_box(self) -> None:
        text, self.text.value = self.text.value, ""
        if text:
            self.submit(text)

    def _repr_mimebundle_(self, **kwargs):
        if self.widget is not None:
            return self.widget._repr_mimebundle_(**kwargs)
        return {"text/plain": f"[{self.title}: headless, no window shown; {len(self.lines)} line(s) in .lines]"}

    # -- what the window does --------------------------------------------------------------
    def show(self, line: str) -> None:
        """Add one line to the log (thread-safe)."""
        with self._lock:
            self.lines.append(line)
            del self.lines[:-MAX_LINES]
        if self.widget is not None:
            self.log.append_stdout(line + "\n")

    def submit(self, text: str) -> bool:
        """Log one line as "me: ...", send it (logging the error if that fails). True if sent."""
        if self.closed:
            self.show(f"(closed: {text!r} not sent)")
            return False
        self.show(f"me: {text}")  # before sending: a quick reply must not appear above it
        if self.ends_on is not None and text.strip() == self.ends_on:
            self.close()  # what the Close button does: stop receiving, disable the inputs, close the rest
            return True
        try:
            self.send(text)
        except (OSError, ValueError) as exc:
            self.show(f"(not sent: {type(exc).__name__}: {exc})")
            return False
        return True

    def _receive_loop(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.receive(self.poll)
            except ConnectionRefusedError:
                self.show("(the other side is not listening: ICMP port unreachable)")
                continue
            except (OSError, ValueError) as exc:
                if not self._stop.is_set():
                    self.show(f"(receiving stopped: {exc})")
                return
            if item is not None:
                text, sender = item
                self.show(f"{describe_sender(sender)}: {text}")

    def close(self) -> None:
        """Stop receiving, disable the inputs, call on_close. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT)
        if self.widget is not None:
            self.text.disabled = self.send_button.disabled = self.close_button.disabled = True
        if self in _open_windows:
            _open_windows.remove(self)
        try:
            if self.on_close is not None:
                self.on_close()
        finally:
            for thing in self.closes:
                thing.close()
        self.show("(closed)")

    @property
    def receiving(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "ChatWindow":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def udp_chat_window(peer: Any, to: tuple[str, int] | None = None, *, title: str | None = None, closes: tuple | list = (), headless: bool | None = None) -> ChatWindow:
    """A ChatWindow for a UDP peer (with send(text, to), receive(timeout), address): a "to" box
    says where lines go (host:port, like seed 001's questions for the IP and the port).
    `closes`: things to close with the window (the peer itself, a reference peer...)."""
    state = {"to": tuple(to) if to else None}
    header = []
    if not (is_headless() if headless is None else headless):
        import ipywidgets as w

        box = w.Text(value=format_address(to) if to else "", description="to:", placeholder="127.0.0.2:40312")

        def changed(change):
            try:
                state["to"] = parse_address(change["new"])
            except ValueError:
                state["to"] = None

        box.observe(changed, names="value")
        header = [box]

    def send(text: str) -> None:
        if state["to"] is None:
            raise ValueError("no valid destination: type host:port in the 'to' box, e.g. 127.0.0.2:40312")
        peer.send(text, state["to"])

    me = format_address(peer.address)
    return ChatWindow(
        send,
        peer.receive,
        title=title or f"UDP chat at {me}",
        header=header,
        closes=closes,
        headless=headless,
    )
