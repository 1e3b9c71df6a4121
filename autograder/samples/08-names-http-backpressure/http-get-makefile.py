# what: reads the answer through sock.makefile('rb'): readline for the status and headers, read(n) or read() for the body
# cell: http_get
# fails: none
def http_get(url, timeout=2.0):
    u = urllib.parse.urlsplit(url)
    target = u.path or "/"
    if u.query:
        target += "?" + u.query
    lines = [f"GET {target} HTTP/1.1", f"Host: {u.netloc}", "Connection: close", "", ""]
    with socket.create_connection((u.hostname, u.port or 80), timeout=timeout) as sock, sock.makefile("rb") as f:
        sock.sendall("\r\n".join(lines).encode("ascii"))
        status = int(f.readline().split(b" ", 2)[1])
        headers = {}
        while (line := f.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("iso-8859-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = f.read(int(headers["content-length"]))
        else:
            body = f.read()
    return status, body
