# what: read_lines collects every recv() until b'' and decodes and splits the whole text once
# cell: read_lines
# fails: none
def read_lines(sock):
    """Return every line the peer sends on `sock` until it closes, decoded from UTF-8, without '\\n'."""
    chunks = []
    while data := sock.recv(4096):
        chunks.append(data)
    lines = b"".join(chunks).decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()  # the text ended with '\n': no line after it
    return lines
