# what: probe with connect() and except clauses instead of connect_ex, the family from ipaddress
# cell: probe
# fails: none
import ipaddress


def probe(address, timeout=1.0):
    """Return 'open', 'refused', 'timeout' (or another errno name) for a TCP connect to `address`; never raise."""
    family = socket.AF_INET6 if ipaddress.ip_address(address[0]).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(address)
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        except OSError as exc:
            return errno.errorcode.get(exc.errno, str(exc.errno))
    return "open"
