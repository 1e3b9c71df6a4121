"""Assignment 02: classic wrong answers lose points in the graded cells that should catch them
(hidden tests included), run through a real kernel like a submission."""
import pytest

from notebook_cases import assert_loses_points

A = "02-socket-object"

# Right up to the dictionary it returns; each bug is one of its values.
DESCRIBE_HEADER = '''
def describe_socket(sock):
    try:
        peer = sock.getpeername()
    except OSError:
        peer = None
'''

DESCRIBE_TYPE_VIA_STR = DESCRIBE_HEADER + '''\
    return {"family": sock.family.name, "type": str(sock.type), "local": sock.getsockname(),
            "peer": peer, "timeout": sock.gettimeout(), "blocking": sock.getblocking()}
'''

DESCRIBE_BLOCKING_FROM_TIMEOUT = DESCRIBE_HEADER + '''\
    return {"family": sock.family.name, "type": sock.type.name, "local": sock.getsockname(),
            "peer": peer, "timeout": sock.gettimeout(), "blocking": sock.gettimeout() is None}
'''

DESCRIBE_BLOCKING_INVERTED = DESCRIBE_HEADER + '''\
    return {"family": sock.family.name, "type": sock.type.name, "local": sock.getsockname(),
            "peer": peer, "timeout": sock.gettimeout(), "blocking": not sock.getblocking()}
'''

PROBE_WITH_CONNECT = '''
def probe(address, timeout=1.0):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)  # raises ConnectionRefusedError, TimeoutError
    return "open"
'''

PROBE_NEVER_CLOSES = '''
def probe(address, timeout=1.0):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    code = s.connect_ex(address)
    return {0: "open", errno.ECONNREFUSED: "refused"}.get(code, "timeout")
'''

PROBE_WITHOUT_TIMEOUT = '''
def probe(address, timeout=1.0):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        code = s.connect_ex(address)  # no settimeout: waits for the kernel's SYN retries
    return {0: "open", errno.ECONNREFUSED: "refused"}.get(code, "timeout")
'''

PROBE_IPV4_ONLY = '''
def probe(address, timeout=1.0):
    with socket.socket() as s:
        s.settimeout(timeout)
        try:
            code = s.connect_ex(address)
        except OSError as exc:
            code = exc.errno
    return {0: "open", errno.ECONNREFUSED: "refused"}.get(code, "timeout")
'''

READ_LINES_ONE_RECV = '''
def read_lines(sock):
    return sock.recv(65536).decode("utf-8").splitlines()
'''

READ_LINES_BYTES = '''
def read_lines(sock):
    with sock.makefile("rb") as f:
        return [line.rstrip(b"\\n") for line in f]
'''

READ_LINES_DECODE_EACH_RECV = '''
def read_lines(sock):
    text = ""
    while True:
        data = sock.recv(4096)
        if not data:
            break
        text += data.decode("utf-8")  # a character split between two recvs cannot be decoded
    lines = text.split("\\n")
    return lines[:-1] if text.endswith("\\n") else lines
'''

READ_LINES_STRIP = '''
def read_lines(sock):
    with sock.makefile("r", encoding="utf-8") as f:
        return [line.strip() for line in f]
'''

CASES = {
    "describe-type-via-str": ("describe_socket", DESCRIBE_TYPE_VIA_STR, ["describe-fresh-and-bound", "describe-every-kind"]),
    "describe-blocking-inverted": ("describe_socket", DESCRIBE_BLOCKING_INVERTED, ["describe-fresh-and-bound", "describe-every-kind"]),
    # right on the visible cases, wrong on a socket with a timeout: only the hidden test sees it
    "describe-blocking-from-timeout": ("describe_socket", DESCRIBE_BLOCKING_FROM_TIMEOUT, ["describe-every-kind"]),
    "probe-with-connect": ("probe", PROBE_WITH_CONNECT,
                           ["probe-open-and-refused", "probe-respects-timeout", "probe-ipv6", "probe-closes-its-socket"]),
    "probe-never-closes": ("probe", PROBE_NEVER_CLOSES, ["probe-closes-its-socket"]),
    "probe-without-timeout": ("probe", PROBE_WITHOUT_TIMEOUT, ["probe-respects-timeout", "probe-closes-its-socket"]),
    "probe-ipv4-only": ("probe", PROBE_IPV4_ONLY, ["probe-ipv6"]),
    "read-lines-one-recv": ("read_lines", READ_LINES_ONE_RECV, ["read-lines-one-byte-chunks", "read-lines-utf8"]),
    "read-lines-bytes": ("read_lines", READ_LINES_BYTES, ["read-lines-whole", "read-lines-one-byte-chunks", "read-lines-utf8"]),
    "read-lines-decode-each-recv": ("read_lines", READ_LINES_DECODE_EACH_RECV, ["read-lines-utf8"]),
    "read-lines-strip": ("read_lines", READ_LINES_STRIP, ["read-lines-utf8"]),
}


@pytest.mark.notebooks
@pytest.mark.parametrize("case", list(CASES))
def test_wrong_implementation_loses_points(case):
    solution_id, source, failing = CASES[case]
    assert_loses_points(A, solution_id, source, failing)
