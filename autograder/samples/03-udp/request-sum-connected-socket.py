# what: request_sum on a connected UDP socket (the kernel drops datagrams from other addresses), with select and one deadline per attempt
# cell: request_sum
# fails: none
import itertools
import select
import time

_ids = itertools.count(1000)


def request_sum(server, a, b, *, timeout=0.3, attempts=3):
    """Ask the UDP sum server at `server` for a + b over a connected socket."""
    my_id = next(_ids)
    payload = json.dumps({"A": a, "B": b, "id": my_id}).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(server)  # only datagrams from `server` reach this socket now
        for attempt in range(attempts):
            sock.send(payload)
            end = time.monotonic() + timeout
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    break
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                try:
                    answer = json.loads(sock.recv(65535))
                except ValueError:
                    continue
                if type(answer) is dict and answer.get("id") == my_id and "Sum" in answer:
                    return answer["Sum"]
        raise TimeoutError(f"{attempts} attempts, no answer from {server}")
