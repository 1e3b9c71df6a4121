# what: (written by a learner helper who saw only the released notebook) reuses one connection and reconnects once when recv returns b'' or sendall raises BrokenPipeError, but forgot ConnectionResetError, so a reused connection the server closed with RST makes request raise instead of retrying.
# cell: long-client-code
# fails: long-client-hidden
# (the rule it breaks, in the exercise's words: If the connection it *reuses* turns out to be closed by the server (`recv` returns `b''` before the end of the reply, or `ConnectionResetError`, or `BrokenPipeError`), `request` closes it, connects again and sends the request once more, transparently: the caller just gets the reply.)
class _ServerClosed(Exception):
    pass


class LongClient:
    """A long connection: the first request() connects, the next ones reuse that connection.
    If the server closed it meanwhile, request() notices, connects again and retries once."""

    def __init__(self, address, timeout=5.0):
        self.address = address
        self.timeout = timeout
        self.sock = None  # the connection, once open

    def _exchange(self, line):
        self.sock.sendall(line + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _ServerClosed()
            reply += chunk
        return reply[:-1]

    def request(self, line: bytes) -> bytes:
        """Send `line` + b"\n" and return the reply line without its b"\n". If the reused
        connection turns out closed (recv returns b'', ConnectionResetError, BrokenPipeError),
        connect again and retry once. Raise ValueError if `line` contains b"\n", and
        ConnectionError if a fresh connection fails too."""
        if b"\n" in line:
            raise ValueError("line contains a newline")
        if self.sock is not None:
            try:
                return self._exchange(line)
            except (_ServerClosed, BrokenPipeError):     # the server closed the reused connection
                self.close()
        self.sock = socket.create_connection(self.address, timeout=self.timeout)
        try:
            return self._exchange(line)
        except (_ServerClosed, OSError) as exc:          # a fresh connection failed: no more retries
            self.close()
            raise ConnectionError(f"the server closed a fresh connection: {exc!r}") from exc

    def close(self):
        """Close the connection, if one is open."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
