# what: (written by a learner helper who saw only the released notebook) reads into a growing bytearray with recv_into through a memoryview of its free tail, doubling the buffer when full, and decodes the filled part once at the end.
# cell: fetch
# fails: none
import socket


def fetch(address, request, timeout=2.0):
    """Send `request` (str) to the TCP server at `address`; return its whole reply (str), read
    until the server closes the connection. Raises TimeoutError after `timeout` s of silence."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(request.encode("utf-8"))
        buffer = bytearray(4096)
        filled = 0
        while True:
            if filled == len(buffer):
                buffer.extend(bytes(len(buffer)))      # double the room
            with memoryview(buffer) as view:
                n = sock.recv_into(view[filled:])
            if n == 0:                                 # the server closed
                break
            filled += n
        return bytes(buffer[:filled]).decode("utf-8")
