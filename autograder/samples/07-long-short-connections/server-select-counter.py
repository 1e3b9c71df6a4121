# what: LimitedEchoServer with a collections.Counter, and select() as the idle timer instead of settimeout
# cell: limited-server-code
# fails: none
import collections
import select


class LimitedEchoServer(TcpServer):
    def __init__(self, idle_timeout=30.0, max_per_client=4, host="127.0.0.1"):
        super().__init__(host)
        self.idle_timeout = idle_timeout
        self.max_per_client = max_per_client
        self.counts = collections.Counter()
        self.lock = threading.Lock()

    def handle_connection(self, conn, addr):
        ip = addr[0]
        with self.lock:
            admitted = self.counts[ip] < self.max_per_client
            if admitted:
                self.counts[ip] += 1
        if not admitted:
            conn.sendall(b"ERROR too many connections from %s (limit %d)\n" % (ip.encode(), self.max_per_client))
            return
        try:
            pending = b""
            while True:
                readable, _, _ = select.select([conn], [], [], self.idle_timeout)
                if not readable:
                    return  # idle_timeout seconds without a byte
                data = conn.recv(65536)
                if not data:
                    return
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    conn.sendall(line + b"\n")
        finally:
            with self.lock:
                self.counts[ip] -= 1
