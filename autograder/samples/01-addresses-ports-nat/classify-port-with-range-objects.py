# what: classify_port with a table of range objects and `in`, after an exact type test
# cell: port-classification
# fails: none
IANA_RANGES = [(range(0, 1024), "well-known"), (range(1024, 49152), "registered"), (range(49152, 65536), "dynamic")]


def classify_port(port):
    """IANA's range name of port: 'well-known', 'registered' or 'dynamic'; ValueError otherwise."""
    if type(port) is not int:  # `in range` would take 80.0 and True
        raise ValueError(f"a port is an int, not {type(port).__name__}")
    for numbers, name in IANA_RANGES:
        if port in numbers:
            return name
    raise ValueError(f"port {port} is outside 0-65535")
