# what: (written by a learner helper who saw only the released notebook) always creates an AF_INET socket, so an ('::1', port) address makes connect_ex raise instead of answering.
# cell: probe
# fails: probe-ipv6
# (the rule it breaks, in the exercise's words: It must close its socket before returning (`with`), set the timeout on its own socket (`settimeout`, not `socket.setdefaulttimeout`, which would change every socket of the program), and work for IPv6 addresses too: `('::1', port)` needs an `AF_INET6` socket.)
import errno
import socket


def probe(address, timeout=1.0):
    """Return 'open', 'refused', 'timeout' (or another errno name) for a TCP connect to `address`; never raise."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        code = s.connect_ex(address)
    if code == 0:
        return "open"
    if code == errno.ECONNREFUSED:
        return "refused"
    if code in (errno.EAGAIN, errno.ETIMEDOUT):
        return "timeout"
    return errno.errorcode.get(code, str(code))
