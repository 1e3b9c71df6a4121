# what: (written by a learner helper who saw only the released notebook) copies the id with `if request.get("id"):`, so a request whose id is 0 (or null) gets a reply without its id.
# cell: serve_sums
# fails: serve-sums-many-clients
# (the rule it breaks, in the exercise's words: replies `{"Sum": A + B}` as JSON in UTF-8, with the request's `"id"` copied into the reply when the request has one;)
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
    if request.get("id"):
        reply["id"] = request["id"]
    return json.dumps(reply).encode("utf-8")


def serve_sums(sock, n, timeout=2.0):
    """Answer n datagrams on the bound UDP socket `sock`, each to its sender; close `sock`;
    raise TimeoutError if no datagram comes for `timeout` seconds."""
    with sock:
        sock.settimeout(timeout)
        for _ in range(n):
            data, address = sock.recvfrom(65535)
            sock.sendto(sum_reply_for(data), address)
