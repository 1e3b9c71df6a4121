# what: (written by a learner helper who saw only the released notebook) parses the dotted form with str.split and a digit whitelist, folds the four groups into one int with functools.reduce and shifts, and unpacks with a comprehension over shift amounts.
# cell: ip-conversions
# fails: none
from functools import reduce

_DIGITS = frozenset("0123456789")


def _group(part):
    if not 1 <= len(part) <= 3 or not set(part) <= _DIGITS:
        raise ValueError(f"not 1-3 ASCII digits: {part!r}")
    if len(part) > 1 and part[0] == "0":
        raise ValueError(f"leading zero in {part!r}")
    value = 0
    for ch in part:
        value = value * 10 + (ord(ch) - ord("0"))
    if value > 255:
        raise ValueError(f"{part!r} is above 255")
    return value


def ip_to_int(text):
    """'192.168.1.2' -> 3232235778; ValueError unless four decimal groups 0-255 (no leading zeros)."""
    if type(text) is not str:
        raise ValueError(f"expected a str, got {type(text).__name__}")
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError(f"expected four groups: {text!r}")
    return reduce(lambda acc, g: (acc << 8) | g, map(_group, parts), 0)


def int_to_ip(number):
    """3232235778 -> '192.168.1.2'; ValueError unless an int in 0 .. 2**32-1."""
    if type(number) is not int or not 0 <= number <= 0xFFFFFFFF:
        raise ValueError(f"not an IPv4 number: {number!r}")
    return ".".join(str((number >> shift) & 0xFF) for shift in (24, 16, 8, 0))
