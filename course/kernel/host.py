"""What the machine says outside the socket tables: `ss`, an interface's MTU, and what a thread
of this process waits for."""
from __future__ import annotations

import platform
import socket
import struct
import subprocess as _subprocess
import threading

__all__ = ["ss", "interface_mtu", "thread_waits_on_io"]


def ss(port: int) -> str:
    """What `ss -tan` prints for the sockets on `port` (with timers), or a note if ss is missing."""
    try:
        out = _subprocess.run(
            ["ss", "-tano", f"( sport = :{port} or dport = :{port} )"],
            capture_output=True, text=True, timeout=5,
        )
    except (OSError, _subprocess.TimeoutExpired) as exc:
        return f"(ss is not available here: {exc}; the same lines come from /proc/net/tcp)"
    return out.stdout.rstrip()


def interface_mtu(name: str = "lo") -> int:
    """The MTU of a network interface, from the SIOCGIFMTU ioctl (works where /sys is absent)."""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16si20x", name.encode()[:15], 0)
        reply = fcntl.ioctl(s.fileno(), 0x8921, request)  # SIOCGIFMTU, linux/sockios.h
    return struct.unpack("16si20x", reply)[1]



# ----------------------------------------------------------------------------------------------
# What a thread of this process is waiting for
# ----------------------------------------------------------------------------------------------
# futex(2) is how a Python thread waits for the GIL, a Lock or an Event; any other wait of a
# sleeping thread is I/O or a timed wait (recv, accept, poll, select, sleep). Numbers per machine.
_FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())


def thread_waits_on_io(thread: threading.Thread) -> bool | None:
    """True when `thread` (of this process) sleeps in the kernel on something other than a lock
    (blocked in recv/accept, or in poll/select with a timeout), False when it runs or waits for a
    lock or the GIL, None when Linux does not say (no /proc, or the thread has ended).

    The checks use it to set a server's stop event only once its threads have gone back to waiting
    on their sockets, so that a thread blocked in recv() without a timeout is caught every time,
    not only when it happened to look at stop.is_set() a moment later."""
    tid = getattr(thread, "native_id", None)
    if tid is None or not thread.is_alive():
        return None
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            state = f.read().rsplit(") ", 1)[1].split()[0]
        with open(f"/proc/self/task/{tid}/syscall") as f:
            call = f.read().split()[0]
    except (OSError, IndexError):
        return None
    if state != "S" or call == "running" or not call.lstrip("-").isdigit():
        return False
    return None if _FUTEX is None else int(call) != _FUTEX
