# what: (written by a learner helper who saw only the released notebook) keeps the tail in self.pending and splits with bytes.split, but cleans each line with rstrip(b"\r\n"), which also removes the b"\r" the protocol keeps.
# cell: line-splitter
# fails: line-splitter-self-check line-splitter-property
# (the rule it breaks, in the exercise's words: `feed(chunk)` takes the next bytes of the stream, cut anywhere (a line may come one byte at a time, several lines may come in one chunk), and returns the list of lines it completes, in order, each **without** its `b"\n"` (a `b"\r"` before it stays: `b"a\r\n"` gives `b"a\r"`).)
class LineSplitter:
    """Split a byte stream into lines ending with b"\n", fed arbitrary chunks."""

    def __init__(self, max_line: int = 1024):
        self.max_line = max_line
        self.pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """Return the lines completed by chunk (without b"\n"); keep the unfinished tail in self.pending."""
        *complete, tail = (self.pending + chunk).split(b"\n")
        lines = []
        for raw in complete:
            if len(raw) > self.max_line:
                self.pending = b""
                raise LineTooLong(f"a line of {len(raw)} bytes, more than {self.max_line}")
            lines.append(raw.rstrip(b"\r\n"))      # "clean up Windows line endings"
        if len(tail) > self.max_line:
            self.pending = b""
            raise LineTooLong(f"{len(tail)} bytes without a newline, more than {self.max_line}")
        self.pending = tail
        return lines
