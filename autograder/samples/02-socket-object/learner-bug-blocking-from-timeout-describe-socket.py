# what: (written by a learner helper who saw only the released notebook) derives 'blocking' from gettimeout() being None instead of asking getblocking(), so a socket with a timeout is reported as non-blocking.
# cell: describe_socket
# fails: describe-every-kind
# (the rule it breaks, in the exercise's words: | `'blocking'` | `True` or `False`, as `getblocking()` says |)
def describe_socket(sock):
    """Return {'family', 'type', 'local', 'peer', 'timeout', 'blocking'} for `sock` (see the table above)."""
    try:
        peer = sock.getpeername()
    except OSError:
        peer = None
    timeout = sock.gettimeout()
    return {
        "family": sock.family.name,
        "type": sock.type.name,
        "local": sock.getsockname(),
        "peer": peer,
        "timeout": timeout,
        "blocking": timeout is None,
    }
