# what: serve_echo with a ThreadPoolExecutor: each client is a task on a pool thread, and leaving the with block joins them
# cell: serve_echo
# fails: none
from concurrent.futures import ThreadPoolExecutor


def serve_echo(listener, stop):
    def serve_one(conn):
        with conn:
            conn.settimeout(0.05)
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.sendall(data)
                except OSError:
                    return

    listener.settimeout(0.05)
    with ThreadPoolExecutor(max_workers=32, thread_name_prefix="echo") as pool:   # exit = shutdown(wait=True)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            pool.submit(serve_one, conn)
