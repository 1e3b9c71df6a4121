"""Assignment 04: classic wrong answers lose the points they should, in the real notebook.

Each source below replaces one solution cell of solutions/04-tcp-client-server; the notebook is
run with a real kernel and the named graded cells must fail (hidden tests included). The same
sources are run directly against the checks in tests/test_tcp.py, which is faster and says which
sentence the learner gets.
"""
import pytest

from notebook_cases import assert_loses_points

ASSIGNMENT = "04-tcp-client-server"

FETCH_ONE_RECV = '''
def fetch(address, request, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(request.encode("utf-8"))
        return sock.recv(1024).decode("utf-8")      # one recv: only what has arrived so far
'''

FETCH_FORGETS_TO_DECODE = '''
def fetch(address, request, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(request.encode("utf-8"))
        chunks = []
        while True:
            data = sock.recv(4096)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)                          # bytes, not text
'''

ECHO_ONE_CLIENT = '''
def echo_one(conn, stop):
    """Echoes one client until it closes or `stop` is set. Right: the bug is in serve_echo."""
    with conn:
        conn.settimeout(0.05)
        while not stop.is_set():
            try:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)
            except TimeoutError:
                continue
            except OSError:
                return
'''

ECHO_ITERATIVE = ECHO_ONE_CLIENT + '''

def serve_echo(listener, stop):
    listener.settimeout(0.05)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        echo_one(conn, stop)                          # one client at a time: the next one waits
'''

# Right: every client in its own thread, all joined once `stop` is set. The wrong sum servers
# below keep it and put their bug in serve_one(conn, stop), which talks to one client.
THREAD_PER_CLIENT = '''

def serve_sum(listener, stop):
    listener.settimeout(0.05)
    threads = []
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        thread = threading.Thread(target=serve_one, args=(conn, stop))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
'''

SUM_CLOSES_AFTER_ONE_REQUEST = '''
def serve_one(conn, stop):
    with conn:                                    # answers one request, then closes
        conn.settimeout(1.0)
        buffer = b""
        while b"\\n" not in buffer:
            data = conn.recv(4096)
            if not data:
                return
            buffer += data
        line = buffer.split(b"\\n", 1)[0]
        conn.sendall(json.dumps(sum_answer(line)).encode("utf-8") + b"\\n")
''' + THREAD_PER_CLIENT

SUM_ONE_RECV_IS_ONE_MESSAGE = '''
def serve_one(conn, stop):
    with conn:
        conn.settimeout(0.05)
        while not stop.is_set():
            try:
                data = conn.recv(256)             # seed 002: one Read = one request
                if not data:
                    return
                conn.sendall(json.dumps(sum_answer(data.rstrip(b"\\n"))).encode("utf-8") + b"\\n")
            except TimeoutError:
                continue
            except OSError:
                return
''' + THREAD_PER_CLIENT

SUM_ANSWER_WITHOUT_ERRORS = '''
def sum_answer(line):
    request = json.loads(line)                        # raises on malformed lines instead of answering
    return {"Sum": request["A"] + request["B"]}
'''

CASES = {
    "client with a single recv": ("fetch", FETCH_ONE_RECV, ["fetch_reads_until_server_closes", "fetch_empty_reply_and_harder_cases"]),
    "client forgetting to decode": ("fetch", FETCH_FORGETS_TO_DECODE, ["fetch_reads_until_server_closes", "fetch_empty_reply_and_harder_cases"]),
    "iterative echo server": ("serve_echo", ECHO_ITERATIVE, ["echo_slow_client_does_not_block_fast", "echo_many_clients_early_close_clean_stop"]),
    "sum server closing after one request": (
        "serve_sum",
        SUM_CLOSES_AFTER_ONE_REQUEST,
        ["sum_server_many_requests_one_connection", "sum_server_split_and_coalesced_requests", "sum_server_several_connections_and_errors"],
    ),
    "sum server assuming one recv is one message": ("serve_sum", SUM_ONE_RECV_IS_ONE_MESSAGE, ["sum_server_split_and_coalesced_requests"]),
    "sum_answer raising on malformed lines": ("sum_answer", SUM_ANSWER_WITHOUT_ERRORS, ["sum_answer_malformed_requests"]),
}


@pytest.mark.notebooks
@pytest.mark.parametrize("case", list(CASES))
def test_wrong_implementation_loses_points(case):
    solution_id, source, failing = CASES[case]
    assert_loses_points(ASSIGNMENT, solution_id, source, failing)
