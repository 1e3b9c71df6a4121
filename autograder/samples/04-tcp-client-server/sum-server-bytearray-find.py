# what: serve_sum with a bytearray buffer and find(b"\n"), deleting each answered line from the front
# cell: serve_sum
# fails: none
def serve_sum(listener, stop):
    def serve_one(conn):
        buffer = bytearray()
        with conn:
            conn.settimeout(0.05)
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[:end + 1]
                    try:
                        conn.sendall(json.dumps(sum_answer(line)).encode("utf-8") + b"\n")
                    except OSError:
                        return

    listener.settimeout(0.05)
    threads = []
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        threads.append(threading.Thread(target=serve_one, args=(conn,), name="sum-client"))
        threads[-1].start()
    for thread in threads:
        thread.join()
