# what: (written by a learner helper who saw only the released notebook) sets the timeout with socket.setdefaulttimeout before creating the socket, which changes the default for every later socket of the program.
# cell: probe
# fails: probe-closes-its-socket
# (the rule it breaks, in the exercise's words: It must close its socket before returning (`with`), set the timeout on its own socket (`settimeout`, not `socket.setdefaulttimeout`, which would change every socket of the program), and work for IPv6 addresses too: `('::1', port)` needs an `AF_INET6` socket.)
import errno
import socket


def probe(address, timeout=1.0):
    """Return 'open', 'refused', 'timeout' (or another errno name) for a TCP connect to `address`; never raise."""
    socket.setdefaulttimeout(timeout)
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        code = s.connect_ex(address)
    if code == 0:
        return "open"
    if code == errno.ECONNREFUSED:
        return "refused"
    if code in (errno.EAGAIN, errno.ETIMEDOUT):
        return "timeout"
    return errno.errorcode.get(code, str(code))
