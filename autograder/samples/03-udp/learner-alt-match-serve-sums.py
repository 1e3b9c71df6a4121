# what: (written by a learner helper who saw only the released notebook) validates the request with a match statement on the decoded JSON (mapping patterns with int() captures, bools excluded) and serves in a try/finally that always closes the socket.
# cell: serve_sums
# fails: none
import json


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def sum_reply_for(data):
    """The reply (bytes) to one request datagram of the sum protocol."""
    try:
        request = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        reply = {"Error": f"not JSON: {data[:40]!r}"}
    else:
        match request:
            case {"A": int(a), "B": int(b)} if _is_int(a) and _is_int(b):
                reply = {"Sum": a + b}
            case dict() if "A" not in request or "B" not in request:
                reply = {"Error": "A and B are required"}
            case dict():
                reply = {"Error": "A and B must be integers"}
            case _:
                reply = {"Error": "not a JSON object"}
        if isinstance(request, dict) and "id" in request:
            reply["id"] = request["id"]
    return json.dumps(reply).encode("utf-8")


def serve_sums(sock, n, timeout=2.0):
    """Answer n datagrams on the bound UDP socket `sock`, each to its sender; close `sock`;
    raise TimeoutError if no datagram comes for `timeout` seconds."""
    try:
        sock.settimeout(timeout)
        for _ in range(n):
            data, sender = sock.recvfrom(65535)
            sock.sendto(sum_reply_for(data), sender)
    finally:
        sock.close()
