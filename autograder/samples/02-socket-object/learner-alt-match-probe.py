# what: (written by a learner helper who saw only the released notebook) picks the family from the host with ipaddress, opens the socket in a with block with its own settimeout, and maps connect_ex's code to an answer with a match statement.
# cell: probe
# fails: none
import errno
import ipaddress
import socket


def probe(address, timeout=1.0):
    """Return 'open', 'refused', 'timeout' (or another errno name) for a TCP connect to `address`; never raise."""
    host = address[0]
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        code = s.connect_ex(address)
    match code:
        case 0:
            return "open"
        case errno.ECONNREFUSED:
            return "refused"
        case errno.EAGAIN | errno.ETIMEDOUT | errno.EINPROGRESS:
            return "timeout"
        case _:
            return errno.errorcode.get(code, str(code))
