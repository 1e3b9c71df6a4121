# what: (written by a learner helper who saw only the released notebook) splits on dots and converts each group with int(), checking only the range and a leading '0', so int() quietly swallows surrounding spaces.
# cell: ip-conversions
# fails: ip-malformed-raises
# (the rule it breaks, in the exercise's words: Each group is 1-3 ASCII digits `0-9` and nothing else: no sign, no space, no `_`, no digit of another script (`" 1.2.3.4"`, `"+1.2.3.4"`, `"١.2.3.4"` raise; careful, `str.isdigit()` and `int()` accept `"١"`, Arabic-Indic one).)
def ip_to_int(text):
    """'192.168.1.2' -> 3232235778; ValueError unless four decimal groups 0-255 (no leading zeros)."""
    if not isinstance(text, str):
        raise ValueError("not a str")
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError("need four groups")
    number = 0
    for part in parts:
        if len(part) > 1 and part.startswith("0"):
            raise ValueError("leading zero")
        value = int(part)          # int(" 1") == 1, int("4 ") == 4
        if not 0 <= value <= 255:
            raise ValueError("group out of range")
        number = number * 256 + value
    return number


def int_to_ip(number):
    """3232235778 -> '192.168.1.2'; ValueError unless an int in 0 .. 2**32-1."""
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 2**32:
        raise ValueError("not an IPv4 number")
    return f"{number >> 24 & 255}.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"
