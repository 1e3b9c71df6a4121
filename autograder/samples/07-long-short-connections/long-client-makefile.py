# what: LongClient reading each reply with a buffered file (makefile, readline) instead of a recv loop
# cell: long-client-code
# fails: none
class LongClient:
    def __init__(self, address, timeout=5.0):
        self.address = address
        self.timeout = timeout
        self.sock = None
        self.file = None

    def _connect(self):
        self.sock = socket.create_connection(self.address, timeout=self.timeout)
        self.file = self.sock.makefile("rb")

    def _exchange(self, line):
        self.sock.sendall(line + b"\n")
        reply = self.file.readline(65537)
        if not reply.endswith(b"\n"):
            raise ConnectionError("the server closed the connection before a full reply")
        return reply[:-1]

    def request(self, line: bytes) -> bytes:
        if b"\n" in line:
            raise ValueError("a request is one line")
        if self.sock is not None:
            try:
                return self._exchange(line)
            except ConnectionError:
                self.close()  # the server closed the connection we reused: one new try below
        self._connect()
        try:
            return self._exchange(line)
        except OSError:
            self.close()  # a fresh connection failed: no retry
            raise

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
