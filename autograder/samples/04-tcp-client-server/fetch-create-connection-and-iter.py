# what: fetch with socket.create_connection and iter(partial(sock.recv, 4096), b""), another idiom of the same loop
# cell: fetch
# fails: none
from functools import partial


def fetch(address, request, timeout=2.0):
    """Send `request`, read until the server closes, return the reply decoded."""
    with socket.create_connection(address, timeout=timeout) as sock:   # the timeout holds for connect too
        sock.sendall(request.encode("utf-8"))
        reply = b"".join(iter(partial(sock.recv, 4096), b""))      # recv until it returns b''
    return reply.decode("utf-8")
