# what: (written by a learner helper who saw only the released notebook) loops until it has n bytes but asks recv for n every time, so a read after a short one can swallow the start of the next message (and the result can be longer than n).
# cell: recv_exactly
# fails: recv_exactly-adversarial-peers messages-chunked-coalesced-cut
# (the rule it breaks, in the exercise's words: Never ask `recv()` for more than the bytes still missing: what comes after the `n` bytes belongs to the next message and must stay in the socket.)
def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Return exactly n bytes from sock; raise IncompleteMessage(n, data) if the peer closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n)
        if not chunk:
            raise IncompleteMessage(n, data)
        data += chunk
    return data
