# what: (written by a learner helper who saw only the released notebook) copies seed 002's Go server: one deadline computed at accept and each recv waits only for what is left of it, so a busy client is cut off idle_timeout seconds after connecting.
# cell: limited-server-code
# fails: server-idle-timeout server-hidden
# (the rule it breaks, in the exercise's words: It closes a connection (returns) when no data arrived for `idle_timeout` seconds, counted again after every request, unlike seed 002's deadline set once.)
class LimitedEchoServer(TcpServer):
    """Echoes each line it receives. Closes a connection that sent nothing for `idle_timeout`
    seconds; refuses a client IP's connection beyond `max_per_client` open ones, with one line
    starting with ERROR."""

    def __init__(self, idle_timeout=30.0, max_per_client=4, host="127.0.0.1"):
        super().__init__(host)
        self.idle_timeout = idle_timeout
        self.max_per_client = max_per_client
        self.counts = {}
        self.lock = threading.Lock()

    def handle_connection(self, conn, addr):
        """Serve one connection (this runs in its own thread); return to close it."""
        ip = addr[0]
        with self.lock:
            if self.counts.get(ip, 0) >= self.max_per_client:
                conn.sendall(f"ERROR too many connections from {ip} (limit {self.max_per_client})\n".encode())
                return
            self.counts[ip] = self.counts.get(ip, 0) + 1
        try:
            deadline = time.monotonic() + self.idle_timeout    # SetReadDeadline, once
            buffer = b""
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                conn.settimeout(left)
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    return
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    conn.sendall(line + b"\n")
        except OSError:
            return
        finally:
            with self.lock:
                self.counts[ip] -= 1
