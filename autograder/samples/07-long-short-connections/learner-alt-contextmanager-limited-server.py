# what: (written by a learner helper who saw only the released notebook) takes and gives back a per-IP slot through a contextlib.contextmanager over a Counter guarded by a Lock (so every way out frees it), and echoes complete lines from a bytes buffer with the idle timeout re-armed before each recv.
# cell: limited-server-code
# fails: none
import collections
import contextlib


class LimitedEchoServer(TcpServer):
    """Echoes each line it receives. Closes a connection that sent nothing for `idle_timeout`
    seconds; refuses a client IP's connection beyond `max_per_client` open ones, with one line
    starting with ERROR."""

    def __init__(self, idle_timeout=30.0, max_per_client=4, host="127.0.0.1"):
        super().__init__(host)
        self.idle_timeout = idle_timeout
        self.max_per_client = max_per_client
        self._open = collections.Counter()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _slot(self, ip):
        """Yields True if `ip` got a slot (and frees it afterwards), False if it is over its cap."""
        with self._lock:
            granted = self._open[ip] < self.max_per_client
            if granted:
                self._open[ip] += 1
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._open[ip] -= 1
                    if not self._open[ip]:
                        del self._open[ip]

    def handle_connection(self, conn, addr):
        """Serve one connection (this runs in its own thread); return to close it."""
        ip = addr[0]
        with self._slot(ip) as granted:
            if not granted:
                with contextlib.suppress(OSError):     # the refused client may be gone already
                    conn.sendall(f"ERROR too many connections from {ip} (limit {self.max_per_client})\n".encode())
                return
            buffer = b""
            try:
                while True:
                    conn.settimeout(self.idle_timeout)     # counted again before every recv
                    try:
                        data = conn.recv(65536)
                    except TimeoutError:
                        return                             # idle: close
                    if not data:
                        return                             # the client closed
                    buffer += data
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        conn.sendall(line + b"\n")
            except OSError:
                return                                     # reset or broken pipe: just close
