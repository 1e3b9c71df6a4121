# what: (written by a learner helper who saw only the released notebook) a thread per client and a 0.05 s timeout on the listener, but the accepted connections keep no timeout, so a thread blocked in recv on an idle client never sees stop and the final join hangs.
# cell: serve_echo
# fails: echo_many_clients_early_close_clean_stop
# (the rule it breaks, in the exercise's words: Give the listener and each connection a short timeout (0.05 s) and check `stop.is_set()` after each timeout.)
import threading


def _echo_client(conn, stop):
    with conn:
        try:
            while not stop.is_set():
                data = conn.recv(4096)
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass


def serve_echo(listener, stop):
    """Echo every byte back to every client of `listener`, each client in its own thread,
    until `stop` is set; then return within 1 s, leaving no socket and no thread behind."""
    listener.settimeout(0.05)
    threads = []
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        t = threading.Thread(target=_echo_client, args=(conn, stop))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
