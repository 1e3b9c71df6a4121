# what: (written by a learner helper who saw only the released notebook) a thread per client with timeouts, but like seed 002 it treats whatever one recv returns as exactly one request line instead of keeping a buffer and cutting at each b"\n".
# cell: serve_sum
# fails: sum_server_split_and_coalesced_requests
# (the rule it breaks, in the exercise's words: keep a **buffer** per connection: append what `recv` returns; while it holds a `b"\n"`, cut off one line, answer it with `json.dumps(sum_answer(line)).encode("utf-8") + b"\n"` (`sendall`); what is left after the last `b"\n"` is the start of the next request;)
import json
import threading


def _sum_client(conn, stop):
    with conn:
        conn.settimeout(0.05)
        try:
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    break
                line = data.rstrip(b"\n")        # one recv = one request
                conn.sendall(json.dumps(sum_answer(line)).encode("utf-8") + b"\n")
        except OSError:
            pass


def serve_sum(listener, stop):
    """Seed 002's sum service, one JSON request per line, many per connection, every client in
    its own thread, until `stop` is set."""
    listener.settimeout(0.05)
    threads = []
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        t = threading.Thread(target=_sum_client, args=(conn, stop))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
