# what: (written by a learner helper who saw only the released notebook) counts connections per IP under a Lock and echoes lines, but gives the slot back only when the client closes (recv returns b''), not when the server closes the connection as idle or on an error.
# cell: limited-server-code
# fails: server-hidden
# (the rule it breaks, in the exercise's words: One more from that IP gets one line starting with `ERROR` (say why, for example `b"ERROR too many connections from 127.0.0.2 (limit 2)\n"`) and is closed; other IPs are not affected; when a connection ends, however it ends, its slot is free again.)
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
                refused = True
            else:
                refused = False
                self.counts[ip] = self.counts.get(ip, 0) + 1
        if refused:
            conn.sendall(b"ERROR too many connections from %s (limit %d)\n" % (ip.encode(), self.max_per_client))
            return
        buffer = b""
        while True:
            conn.settimeout(self.idle_timeout)
            try:
                data = conn.recv(65536)
            except (TimeoutError, OSError):
                return                              # idle or broken: close (the slot stays taken)
            if not data:
                with self.lock:
                    self.counts[ip] -= 1
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                conn.sendall(line + b"\n")
