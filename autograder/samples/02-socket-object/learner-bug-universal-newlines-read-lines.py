# what: (written by a learner helper who saw only the released notebook) reads through makefile("r", encoding="utf-8") in text mode without newline='\n', so universal newlines turn '\r\n' into '\n' and a lone '\r' into a line end.
# cell: read_lines
# fails: read-lines-utf8
# (the rule it breaks, in the exercise's words: Only `'\n'` ends a line: keep every `'\r'`, so `b'dos line\r\n'` gives `'dos line\r'`, and a lone `'\r'` inside a line stays where it is.)
def read_lines(sock):
    """Return every line the peer sends on `sock` until it closes, decoded from UTF-8, without '\\n'."""
    lines = []
    with sock.makefile("r", encoding="utf-8") as f:
        for line in f:
            lines.append(line[:-1] if line.endswith("\n") else line)
    return lines
