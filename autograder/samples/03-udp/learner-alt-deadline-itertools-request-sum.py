# what: (written by a learner helper who saw only the released notebook) counts attempts with itertools.count, gives each send its own monotonic deadline and re-arms settimeout with the time left, so stray datagrams are skipped without stretching the wait.
# cell: request_sum
# fails: none
import random
import itertools
import json
import socket
import time


def request_sum(server, a, b, *, timeout=0.3, attempts=3):
    """Ask the UDP sum server at `server` for a + b; retry after each `timeout`, up to `attempts`
    sends; return the reply's "Sum", or raise TimeoutError."""
    request_id = random.randrange(1, 2**31)
    payload = json.dumps({"id": request_id, "A": a, "B": b}).encode("utf-8")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for attempt in itertools.count(1):
            if attempt > attempts:
                break
            sock.sendto(payload, server)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data, sender = sock.recvfrom(65535)
                except TimeoutError:
                    break
                if sender != server:
                    continue
                try:
                    reply = json.loads(data.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    continue
                if isinstance(reply, dict) and reply.get("id") == request_id and "Sum" in reply:
                    return reply["Sum"]
    raise TimeoutError(f"no reply from {server} after {attempts} attempts of {timeout} s")
