# what: describe_socket builds the dict in steps and catches only the ENOTCONN of getpeername
# cell: describe_socket
# fails: none
def describe_socket(sock):
    """Return {'family', 'type', 'local', 'peer', 'timeout', 'blocking'} for `sock` (see the table above)."""
    info = dict(family=socket.AddressFamily(sock.family).name, type=socket.SocketKind(sock.type).name)
    info["local"] = sock.getsockname()
    try:
        info["peer"] = sock.getpeername()
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            raise
        info["peer"] = None
    info["timeout"] = sock.gettimeout()
    info["blocking"] = sock.getblocking()
    return info
