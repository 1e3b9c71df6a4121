# what: each attempt as an event loop makes it: a non-blocking connect_ex, select for writability with the per-attempt timeout, then SO_ERROR
# cell: connect_any
# fails: none
def connect_any(host, port, timeout=2.0, resolve=socket.getaddrinfo):
    import os
    import select

    error = OSError(f"no address for {host!r}")
    for family, type_, proto, _, sockaddr in resolve(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, type_, proto)
        sock.setblocking(False)
        code = sock.connect_ex(sockaddr)
        if code == errno.EINPROGRESS:
            _, writable, _ = select.select([], [sock], [], timeout)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if writable else None
        if code == 0:
            sock.settimeout(timeout)
            return sock
        sock.close()
        error = TimeoutError(f"{sockaddr} did not answer within {timeout} s") if code is None else OSError(code, os.strerror(code))
        if code == errno.ECONNREFUSED:
            error = ConnectionRefusedError(code, os.strerror(code))
    raise error
