# what: is_private and is_loopback with the learner's own ip_to_int and masks for IPv4, ipaddress only to parse IPv6
# cell: private-loopback
# fails: none
def _parse(text):
    """(4, n) or (6, n); ValueError for anything that is not an address str."""
    if not isinstance(text, str):
        raise ValueError(f"an IP address is a str, not {type(text).__name__}")
    if ":" in text:
        try:
            return 6, int(ipaddress.IPv6Address(text))
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv6 address") from None  # a plain ValueError, as ip_address raises
    return 4, ip_to_int(text)


def _in(n, network, prefix, bits):
    mask = ((1 << prefix) - 1) << (bits - prefix)
    return n & mask == network


def is_private(text):
    """True for RFC 1918 and fc00::/7 addresses; ValueError if text is not an IP address (str)."""
    version, n = _parse(text)
    if version == 6:
        return _in(n, 0xFC << 120, 7, 128)
    return _in(n, 10 << 24, 8, 32) or _in(n, (172 << 24) | (16 << 16), 12, 32) or _in(n, (192 << 24) | (168 << 16), 16, 32)


def is_loopback(text):
    """True for 127.0.0.0/8 and ::1; ValueError if text is not an IP address (str)."""
    version, n = _parse(text)
    return n == 1 if version == 6 else _in(n, 127 << 24, 8, 32)
