# what: (written by a learner helper who saw only the released notebook) a plain recvfrom/sendto loop that never sets a timeout, so with fewer than n datagrams it blocks forever and never closes the socket.
# cell: serve_sums
# fails: serve-sums-many-clients
# (the rule it breaks, in the exercise's words: waits at most `timeout` seconds for each datagram: if none comes, it closes `sock` and raises `TimeoutError` (a server that waits forever for a client that never comes cannot be stopped).)
import json


def sum_reply_for(data):
    """The reply (bytes) to one request datagram of the sum protocol."""
    try:
        request = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return json.dumps({"Error": "not JSON"}).encode("utf-8")
    if not isinstance(request, dict):
        return json.dumps({"Error": "not a JSON object"}).encode("utf-8")
    a, b = request.get("A"), request.get("B")
    if type(a) is not int or type(b) is not int:
        reply = {"Error": "A and B must be integers"}
    else:
        reply = {"Sum": a + b}
    if "id" in request:
        reply["id"] = request["id"]
    return json.dumps(reply).encode("utf-8")


def serve_sums(sock, n, timeout=2.0):
    """Answer n datagrams on the bound UDP socket `sock`, each to its sender; close `sock`;
    raise TimeoutError if no datagram comes for `timeout` seconds."""
    for _ in range(n):
        data, address = sock.recvfrom(65535)
        sock.sendto(sum_reply_for(data), address)
    sock.close()
