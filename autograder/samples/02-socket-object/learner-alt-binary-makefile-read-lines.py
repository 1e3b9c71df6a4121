# what: (written by a learner helper who saw only the released notebook) opens a binary makefile('rb'), iterates over its byte lines, cuts the one trailing b'\n' with removesuffix and decodes each line on its own (a line ends on a whole character).
# cell: read_lines
# fails: none
def read_lines(sock):
    """Return every line the peer sends on `sock` until it closes, decoded from UTF-8, without '\\n'."""
    with sock.makefile("rb") as f:
        return [raw.removesuffix(b"\n").decode("utf-8") for raw in f]
