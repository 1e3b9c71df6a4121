# what: read_lines reads bytes with readline() from a binary makefile and decodes each whole line
# cell: read_lines
# fails: none
def read_lines(sock):
    """Return every line the peer sends on `sock` until it closes, decoded from UTF-8, without '\\n'."""
    lines = []
    with sock.makefile("rb") as f:
        while True:
            line = f.readline()
            if not line:
                return lines
            lines.append(line.removesuffix(b"\n").decode("utf-8"))
