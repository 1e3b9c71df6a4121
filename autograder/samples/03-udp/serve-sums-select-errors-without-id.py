# what: serve_sums waiting with select instead of settimeout, counting with a while loop, and error replies that never carry the id (the text allows both)
# cell: serve_sums
# fails: none
import select


def sum_reply_for(data):
    try:
        request = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return b'{"Error": "not UTF-8 JSON"}'
    if not isinstance(request, dict):
        return b'{"Error": "not an object"}'
    numbers = [request.get(k) for k in ("A", "B")]
    if any(isinstance(x, bool) or not isinstance(x, int) for x in numbers):
        return b'{"Error": "A and B must be integers"}'
    reply = {"Sum": numbers[0] + numbers[1]}
    if "id" in request:
        reply["id"] = request["id"]
    return json.dumps(reply).encode("utf-8")


def serve_sums(sock, n, timeout=2.0):
    try:
        answered = 0
        while answered < n:
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no datagram for {timeout} s after {answered} of {n}")
            data, who = sock.recvfrom(65535)
            sock.sendto(sum_reply_for(data), who)
            answered += 1
    finally:
        sock.close()
