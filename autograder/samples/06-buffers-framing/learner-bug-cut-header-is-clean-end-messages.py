# what: (written by a learner helper who saw only the released notebook) struct-based framing that returns None for any IncompleteMessage while reading the header, so a peer that closes after 1-3 header bytes looks like a clean end.
# cell: messages
# fails: messages-chunked-coalesced-cut
# (the rule it breaks, in the exercise's words: the peer closed **inside** a message (in the header or in the payload): let `IncompleteMessage` propagate.)
def send_message(sock: socket.socket, payload: bytes) -> None:
    """Send payload as one message: its length as 4 bytes big-endian ("!I"), then the payload."""
    sock.sendall(struct.pack("!I", len(payload)) + payload)


def recv_message(sock: socket.socket, max_size: int = MAX_MESSAGE) -> bytes | None:
    """Receive one length-prefixed message; None if the peer closed cleanly before a new header.
    MessageTooLong if the header announces more than max_size bytes."""
    try:
        header = recv_exactly(sock, 4)
    except IncompleteMessage:
        return None                  # the peer closed: no more messages
    (length,) = struct.unpack("!I", header)
    if length > max_size:
        raise MessageTooLong(f"{length} bytes announced, the limit is {max_size}")
    return recv_exactly(sock, length)
