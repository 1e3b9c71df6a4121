# what: (written by a learner helper who saw only the released notebook) preallocates a bytearray of n bytes and fills it in place with recv_into on a memoryview slice of the still-missing part, so no recv asks for more than is missing.
# cell: recv_exactly
# fails: none
def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Return exactly n bytes from sock; raise IncompleteMessage(n, data) if the peer closes first."""
    buffer = bytearray(n)
    got = 0
    with memoryview(buffer) as view:
        while got < n:
            count = sock.recv_into(view[got:], n - got)
            if count == 0:                      # b'': the peer closed before n bytes came
                raise IncompleteMessage(n, bytes(buffer[:got]))
            got += count
    return bytes(buffer)
