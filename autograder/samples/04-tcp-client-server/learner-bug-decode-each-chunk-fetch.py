# what: (written by a learner helper who saw only the released notebook) reads until the server closes, but decodes every recv chunk on its own and joins the strings, which fails when a chunk ends inside a multi-byte character.
# cell: fetch
# fails: fetch_empty_reply_and_harder_cases
# (the rule it breaks, in the exercise's words: Decode **once, at the end**: a write may end in the middle of a multi-byte UTF-8 character (`"你"` is 3 bytes), so decoding each chunk separately can fail.)
import socket


def fetch(address, request, timeout=2.0):
    """Send `request` (str) to the TCP server at `address`; return its whole reply (str), read
    until the server closes the connection. Raises TimeoutError after `timeout` s of silence."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(request.encode("utf-8"))
        text = ""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            text += chunk.decode("utf-8")
        return text
