# what: LineSplitter with a bytearray buffer and find(), cutting one line at a time
# cell: line-splitter
# fails: none
class LineSplitter:
    """Split a byte stream into lines ending with b"\n", fed arbitrary chunks."""

    def __init__(self, max_line: int = 1024):
        self.max_line = max_line
        self._buffer = bytearray()

    @property
    def pending(self) -> bytes:
        return bytes(self._buffer)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Return the lines completed by chunk (without b"\n"); keep the unfinished tail in self.pending."""
        self._buffer += chunk
        lines = []
        while (end := self._buffer.find(b"\n")) != -1:
            if end > self.max_line:
                break
            lines.append(bytes(self._buffer[:end]))
            del self._buffer[:end + 1]
        if self._buffer.find(b"\n") > self.max_line or (b"\n" not in self._buffer and len(self._buffer) > self.max_line):
            self._buffer.clear()
            raise LineTooLong(f"a line is longer than max_line={self.max_line} bytes")
        return lines
