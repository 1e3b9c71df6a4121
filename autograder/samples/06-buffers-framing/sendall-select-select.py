# what: sendall_nonblocking with select.select() instead of a selectors selector, and a plain slice count
# cell: sendall-nonblocking
# fails: none
import select


def sendall_nonblocking(sock: socket.socket, data: bytes, timeout: float) -> None:
    """Send all of data on the non-blocking sock with send(); TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    view = memoryview(data)
    while view:
        try:
            taken = sock.send(view)
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(view)} of {len(data)} bytes not sent after {timeout} s") from None
            _, writable, _ = select.select([], [sock], [], left)
            if not writable:
                raise TimeoutError(f"{len(view)} of {len(data)} bytes not sent after {timeout} s") from None
            continue
        view = view[taken:]
