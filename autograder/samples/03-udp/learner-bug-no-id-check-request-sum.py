# what: (written by a learner helper who saw only the released notebook) gives each attempt a deadline and checks the sender, but takes the first JSON reply from the server as the answer without comparing its id.
# cell: request_sum
# fails: request-sum-lossy-server
# (the rule it breaks, in the exercise's words: accept only a reply that comes **from `server`** and carries **your id**; ignore any other datagram and keep waiting;)
import random
import time
import json
import socket


def request_sum(server, a, b, *, timeout=0.3, attempts=3):
    """Ask the UDP sum server at `server` for a + b; retry after each `timeout`, up to `attempts`
    sends; return the reply's "Sum", or raise TimeoutError."""
    my_id = random.randint(1, 10**6)
    message = json.dumps({"id": my_id, "A": a, "B": b}).encode("utf-8")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(attempts):
            sock.sendto(message, server)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    data, sender = sock.recvfrom(65535)
                except TimeoutError:
                    break
                if sender == server:
                    return json.loads(data.decode("utf-8"))["Sum"]
    raise TimeoutError("the server never answered")
