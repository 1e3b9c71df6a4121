# what: (written by a learner helper who saw only the released notebook) builds and reads the 4-byte big-endian header with int.to_bytes / int.from_bytes instead of struct (the same bytes as "!I"), checks the announced length against max_size before reading on, and tells a clean end from a cut header by the partial bytes of IncompleteMessage.
# cell: messages
# fails: none
HEADER = 4


def send_message(sock: socket.socket, payload: bytes) -> None:
    """Send payload as one message: its length as 4 bytes big-endian ("!I"), then the payload."""
    sock.sendall(len(payload).to_bytes(HEADER, "big", signed=False))
    sock.sendall(payload)


def recv_message(sock: socket.socket, max_size: int = MAX_MESSAGE) -> bytes | None:
    """Receive one length-prefixed message; None if the peer closed cleanly before a new header.
    MessageTooLong if the header announces more than max_size bytes."""
    try:
        header = recv_exactly(sock, HEADER)
    except IncompleteMessage as exc:
        if not exc.partial:                     # closed between two messages: the normal end
            return None
        raise                                   # closed inside the header
    length = int.from_bytes(header, "big", signed=False)
    if length > max_size:
        raise MessageTooLong(f"the header announces {length} bytes, more than max_size={max_size}")
    return recv_exactly(sock, length)
