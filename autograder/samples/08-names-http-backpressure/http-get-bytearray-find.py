# what: one bytearray buffer, find() for the end of the headers, a regex for Content-Length, recv_into a memoryview
# cell: http_get
# fails: none
def http_get(url, timeout=2.0):
    import re

    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    path += f"?{parts.query}" if parts.query else ""
    buf = bytearray()
    chunk = bytearray(8192)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path.encode(), parts.netloc.encode()))
        view = memoryview(chunk)
        end = -1
        while end < 0:
            n = s.recv_into(view)
            if n == 0:
                raise ConnectionError("closed inside the headers")
            buf += view[:n]
            end = buf.find(b"\r\n\r\n")
        head = bytes(buf[:end])
        m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        want = int(m.group(1)) if m else None
        body = buf[end + 4:]
        while want is None or len(body) < want:
            n = s.recv_into(view)
            if n == 0:
                break
            body += view[:n]
    return int(head.split(None, 2)[1]), bytes(body if want is None else body[:want])
