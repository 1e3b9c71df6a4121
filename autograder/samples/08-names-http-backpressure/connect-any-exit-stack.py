# what: an ExitStack closes each failed attempt's socket; pop_all() keeps the one that connected
# cell: connect_any
# fails: none
def connect_any(host, port, timeout=2.0, resolve=socket.getaddrinfo):
    from contextlib import ExitStack

    answers = resolve(host, port, type=socket.SOCK_STREAM)
    errors = []
    for family, type_, proto, _, sockaddr in answers:
        with ExitStack() as stack:
            sock = stack.enter_context(socket.socket(family, type_, proto))
            sock.settimeout(timeout)
            try:
                sock.connect(sockaddr)
            except OSError as exc:
                errors.append(exc)
                continue
            stack.pop_all()
            return sock
    raise errors[-1]
