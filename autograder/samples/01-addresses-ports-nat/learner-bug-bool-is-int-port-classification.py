# what: (written by a learner helper who saw only the released notebook) classifies with isinstance(port, int) and a chain of comparisons, so True and False pass as ports 1 and 0.
# cell: port-classification
# fails: ports-boundaries
# (the rule it breaks, in the exercise's words: `True` and `False` are not ports: they raise `ValueError`, as in exercise 1 (a `bool` is an `int` to Python, not to this course).)
def classify_port(port):
    """IANA's range name of port: 'well-known', 'registered' or 'dynamic'; ValueError otherwise."""
    if not isinstance(port, int):
        raise ValueError(f"not a port number: {port!r}")
    if 0 <= port <= 1023:
        return "well-known"
    if 1024 <= port <= 49151:
        return "registered"
    if 49152 <= port <= 65535:
        return "dynamic"
    raise ValueError(f"{port} is outside 0-65535")
