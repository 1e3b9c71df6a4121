# what: a small class per connection attached to its selector key (key.data), a deque of pending chunks and a byte count, events recomputed after every step
# cell: serve_echo_buffered
# fails: none
def serve_echo_buffered(listener, stop, limit=65536):
    from collections import deque

    class Client:
        def __init__(self, conn):
            self.conn, self.chunks, self.size, self.eof = conn, deque(), 0, False

        def events(self):
            wanted = 0
            if not self.eof and self.size < limit:
                wanted |= selectors.EVENT_READ
            if self.size:
                wanted |= selectors.EVENT_WRITE
            return wanted

    sel = selectors.DefaultSelector()
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, data=None)

    def close(client):
        sel.unregister(client.conn)
        client.conn.close()

    try:
        while not stop.is_set():
            for key, mask in sel.select(0.05):
                if key.data is None:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, data=Client(conn))
                    continue
                client = key.data
                try:
                    if mask & selectors.EVENT_WRITE:
                        while client.chunks:
                            first = client.chunks[0]
                            n = client.conn.send(first)
                            client.size -= n
                            if n < len(first):
                                client.chunks[0] = first[n:]
                                break
                            client.chunks.popleft()
                    if mask & selectors.EVENT_READ:
                        data = client.conn.recv(65536)
                        if data:
                            client.chunks.append(data)
                            client.size += len(data)
                        else:
                            client.eof = True
                except BlockingIOError:
                    pass
                except OSError:
                    close(client)
                    continue
                if client.eof and not client.size:
                    close(client)
                else:
                    sel.modify(client.conn, client.events(), data=client)
    finally:
        for key in list(sel.get_map().values()):
            if key.data is not None:
                key.fileobj.close()
        sel.close()
