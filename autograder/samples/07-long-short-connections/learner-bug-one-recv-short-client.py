# what: (written by a learner helper who saw only the released notebook) connects, sends the line and takes a single recv as the whole reply, so a reply that arrives in several pieces is returned cut short.
# cell: short-client-code
# fails: short-client-hidden
# (the rule it breaks, in the exercise's words: Write `ShortClient`: `ShortClient(address, timeout=5.0)` keeps the server's address; `request(line)` connects, sends `line + b"\n"`, reads until the reply's `b"\n"` (TCP may deliver it in several pieces: loop on `recv`), closes the connection and returns the reply without its `b"\n"`.)
class ShortClient:
    """Short connections: each request() opens a TCP connection to `address`, sends one line,
    reads one reply line and closes the connection."""

    def __init__(self, address, timeout=5.0):
        self.address = address
        self.timeout = timeout

    def request(self, line: bytes) -> bytes:
        """Send `line` + b"\n"; return the reply line without its b"\n".
        Raise ValueError if `line` contains b"\n", ConnectionError if the server closes first."""
        if b"\n" in line:
            raise ValueError("line contains a newline")
        with socket.create_connection(self.address, timeout=self.timeout) as sock:
            sock.sendall(line + b"\n")
            reply = sock.recv(65536)
        if not reply:
            raise ConnectionError("the server closed without replying")
        return reply.rstrip(b"\n") if reply.endswith(b"\n") else reply

    def close(self):
        """Nothing stays open between requests of a short client."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
