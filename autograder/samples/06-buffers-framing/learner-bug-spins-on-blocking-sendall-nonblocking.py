# what: (written by a learner helper who saw only the released notebook) slices a memoryview and keeps the deadline, but on BlockingIOError just tries send() again at once, a busy loop that burns a CPU core instead of waiting for the socket to become writable.
# cell: sendall-nonblocking
# fails: sendall-slow-reader-and-deadline
# (the rule it breaks, in the exercise's words: When it raises `BlockingIOError`, the send buffer is full: wait until the socket is writable with `select.select` or a `selectors` selector, then try again. Do not retry in a loop without waiting.)
def sendall_nonblocking(sock: socket.socket, data: bytes, timeout: float) -> None:
    """Send all of data on the non-blocking sock with send(); TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    view = memoryview(data)
    sent = 0
    while sent < len(view):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"only {sent} of {len(view)} bytes were taken in {timeout} s")
        try:
            sent += sock.send(view[sent:])
        except BlockingIOError:
            continue                      # buffer full: try again
