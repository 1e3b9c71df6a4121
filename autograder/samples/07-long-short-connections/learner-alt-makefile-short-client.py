# what: (written by a learner helper who saw only the released notebook) for each request opens a connection with create_connection, wraps it in a binary makefile and lets readline() collect the reply pieces up to b"\n"; a reply without b"\n" means the server closed first.
# cell: short-client-code
# fails: none
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
            raise ValueError("a request line must not contain b'\\n'")
        with socket.create_connection(self.address, timeout=self.timeout) as sock:
            sock.sendall(line + b"\n")
            with sock.makefile("rb") as reader:
                reply = reader.readline()           # loops on recv until b"\n" or end of stream
        if not reply.endswith(b"\n"):
            raise ConnectionError(f"the server closed after {len(reply)} bytes, before a full reply line")
        return reply[:-1]

    def close(self):
        """Nothing stays open between requests of a short client."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
