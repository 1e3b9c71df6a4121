# what: recv_exactly with recv_into() into a buffer made once, through a memoryview (no copy per chunk)
# cell: recv_exactly
# fails: none
def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Return exactly n bytes from sock; raise IncompleteMessage(n, data) if the peer closes first."""
    buffer = bytearray(n)
    view = memoryview(buffer)
    got = 0
    while got < n:
        count = sock.recv_into(view[got:], n - got)
        if count == 0:
            raise IncompleteMessage(n, buffer[:got])
        got += count
    return bytes(buffer)
