"""Assignment 07: classic wrong implementations lose points (each runs the instructor notebook with
one solution cell replaced). The sources are also used by tests/test_connections.py, which runs the
same checks in-process."""
import pytest

from notebook_cases import assert_loses_points

ASSIGNMENT = "07-long-short-connections"

# Reuses one connection and never notices that the server closed it.
LONG_NEVER_RECONNECTS = '''
class LongClient:
    def __init__(self, address, timeout=2.0):
        self.address = address
        self.timeout = timeout
        self.sock = None

    def request(self, line: bytes) -> bytes:
        if b"\\n" in line:
            raise ValueError("one line only")
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
        self.sock.sendall(line + b"\\n")
        reply = b""
        while not reply.endswith(b"\\n"):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            reply += chunk
        return reply[:-1]

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
'''

# Looks long from the outside, but opens a new connection for every request.
LONG_CONNECTION_PER_REQUEST = '''
class LongClient:
    def __init__(self, address, timeout=2.0):
        self.address = address
        self.timeout = timeout

    def request(self, line: bytes) -> bytes:
        if b"\\n" in line:
            raise ValueError("one line only")
        with socket.create_connection(self.address, timeout=self.timeout) as sock:
            sock.sendall(line + b"\\n")
            reply = b""
            while not reply.endswith(b"\\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                reply += chunk
        return reply[:-1]

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
'''

_SERVER = '''
class LimitedEchoServer(TcpServer):
    def __init__(self, idle_timeout=30.0, max_per_client=4, host="127.0.0.1"):
        super().__init__(host)
        self.idle_timeout = idle_timeout
        self.max_per_client = max_per_client
        self.open_per_ip = {}
        self.lock = threading.Lock()

    def handle_connection(self, conn, addr):
        ip = KEY
        with self.lock:
            refused = self.open_per_ip.get(ip, 0) >= self.max_per_client
            if not refused:
                self.open_per_ip[ip] = self.open_per_ip.get(ip, 0) + 1
        if refused:
            conn.sendall(b"ERROR too many connections\\n")
            return
        try:
            TIMEOUT
            buffer = b""
            while True:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    return
                if not data:
                    return
                buffer += data
                while b"\\n" in buffer:
                    line, buffer = buffer.split(b"\\n", 1)
                    conn.sendall(line + b"\\n")
        finally:
            DECREMENT
'''
_DECREMENT = '''with self.lock:
                self.open_per_ip[ip] -= 1'''


def server_source(key="addr[0]", timeout="conn.settimeout(self.idle_timeout)", decrement=_DECREMENT):
    return _SERVER.replace("KEY", key).replace("TIMEOUT", timeout).replace("DECREMENT", decrement)


# No idle timeout: recv waits for as long as the client stays silent.
SERVER_NO_IDLE_TIMEOUT = server_source(timeout="conn.settimeout(None)")
# The cap counts every connection together instead of per client IP.
SERVER_GLOBAL_CAP = server_source(key='"everyone"')
# Seed 002's deadline set once: a lifetime limit, which also closes a busy connection.
SERVER_DEADLINE_SET_ONCE = server_source(
    timeout="conn.settimeout(None); deadline = time.monotonic() + self.idle_timeout"
).replace("data = conn.recv(65536)", "conn.settimeout(max(0.001, deadline - time.monotonic())); data = conn.recv(65536)")
# Counts a connection in, never out: a client that reconnects is refused for ever.
SERVER_NEVER_FREES = server_source(decrement="pass")

MEASUREMENT_SWAPPED = '''
def measure_latencies(address, n):
    short, long = [], []
    with ShortClient(address) as client:
        for i in range(n):
            start = time.perf_counter()
            client.request(b"ping")
            short.append(time.perf_counter() - start)
    with LongClient(address) as client:
        for i in range(n):
            start = time.perf_counter()
            client.request(b"ping")
            long.append(time.perf_counter() - start)
    return long, short
'''

CASES = {
    "long-client-never-reconnects": ("long-client-code", LONG_NEVER_RECONNECTS,
                                     ["long-client-reconnects", "long-client-hidden"]),
    "long-client-connection-per-request": ("long-client-code", LONG_CONNECTION_PER_REQUEST,
                                           ["long-client-reuses-connection", "long-client-reconnects",
                                            "long-client-hidden", "measurement"]),
    "server-without-idle-timeout": ("limited-server-code", SERVER_NO_IDLE_TIMEOUT,
                                    ["server-idle-timeout", "server-hidden"]),
    "server-cap-global": ("limited-server-code", SERVER_GLOBAL_CAP, ["server-cap-per-client", "server-hidden"]),
    "measurement-swapped": ("measure-latencies-code", MEASUREMENT_SWAPPED, ["measurement", "measurement-hidden"]),
}


@pytest.mark.notebooks
@pytest.mark.parametrize("case", sorted(CASES))
def test_wrong_implementation_loses_points(case):
    solution_id, source, failing = CASES[case]
    assert_loses_points(ASSIGNMENT, solution_id, source, failing)
