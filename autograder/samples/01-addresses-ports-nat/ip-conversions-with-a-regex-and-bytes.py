# what: ip_to_int with one regular expression and int.from_bytes, int_to_ip with to_bytes: no shifts by hand
# cell: ip-conversions
# fails: none
import re

_GROUP = "(0|[1-9][0-9]{0,2})"
_DOTTED = re.compile(r"\.".join([_GROUP] * 4), re.ASCII)


def ip_to_int(text):
    """'192.168.1.2' -> 3232235778; ValueError unless four decimal groups 0-255 (no leading zeros)."""
    if type(text) is not str:
        raise ValueError(f"an IPv4 address is a str, not {type(text).__name__}")
    m = _DOTTED.fullmatch(text)  # fullmatch: "$" would let a trailing newline through
    if m is None or any(int(g) > 255 for g in m.groups()):
        raise ValueError(f"{text!r} is not four decimal groups 0-255 without leading zeros")
    return int.from_bytes(bytes(int(g) for g in m.groups()), "big")


def int_to_ip(number):
    """3232235778 -> '192.168.1.2'; ValueError unless an int in 0 .. 2**32-1."""
    if type(number) is not int:  # bool is a subclass of int, not int itself
        raise ValueError(f"{number!r} is not an int")
    try:
        packed = number.to_bytes(4, "big")  # OverflowError outside 0 .. 2**32-1
    except OverflowError:
        raise ValueError(f"{number} is outside 0 .. 2**32-1") from None
    return ".".join(str(b) for b in packed)
