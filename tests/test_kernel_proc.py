"""course.kernel's /proc/net reader, on real sockets and on bytes."""
import socket

from course import kernel
from course.deadline import wait_for

SAMPLE_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A3E2 0100007F:1F90 01 00000005:00000007 00:00000000 00000000     0        0 12346 1 0000000000000000 20 4 30 10 -1
"""
SAMPLE_TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F91 0000000000000000FFFF00000200007F:D431 06 00000000:00000000 03:00000F9F 00000000     0        0 0 3 0000000000000000
"""


def test_parse_ipv4_lines():
    listen, conn = kernel.parse_proc_net(SAMPLE_TCP, "tcp")
    assert listen == kernel.SocketEntry("tcp", ("127.0.0.1", 8080), ("0.0.0.0", 0), "LISTEN", 0, 0, 12345)
    assert conn.local == ("127.0.0.1", 41954) and conn.state == "ESTABLISHED"
    assert (conn.tx_queue, conn.rx_queue) == (5, 7)


def test_parse_ipv6_and_v4_mapped_lines():
    listen, tw = kernel.parse_proc_net(SAMPLE_TCP6, "tcp6")
    assert listen.local == ("::1", 8080)
    assert tw.local == ("127.0.0.1", 8081) and tw.remote == ("127.0.0.2", 54321) and tw.state == "TIME_WAIT"


def test_states_of_a_real_connection_through_close():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        assert kernel.tcp_state(listener) == "CLOSE"  # bound, not listening: no line in /proc yet
        listener.listen()
        port = listener.getsockname()[1]
        assert kernel.tcp_state(listener) == "LISTEN"
        client = socket.create_connection(("127.0.0.1", port), timeout=2)
        server_side, _ = listener.accept()
        assert kernel.tcp_state(client) == kernel.tcp_state(server_side) == "ESTABLISHED"
        client.close()  # active close: the client goes to FIN_WAIT2, the server to CLOSE_WAIT
        wait_for(lambda: kernel.tcp_state(server_side) == "CLOSE_WAIT", 2, "server never reached CLOSE_WAIT")
        states = {state for _, _, state in kernel.states_on_port(port)}
        assert {"LISTEN", "CLOSE_WAIT", "FIN_WAIT2"} <= states
        server_side.close()
        wait_for(
            lambda: "TIME_WAIT" in {s for _, _, s in kernel.states_on_port(port)},
            2,
            "the active closer never reached TIME_WAIT",
        )


def test_udp_sockets_are_listed_with_their_inode():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.3", 0))
        e = kernel.entry_of(u)
        assert e.proto == "udp" and e.local == u.getsockname() and e.state == "UNCONN"
        assert e.inode in kernel.socket_inodes_of_this_process()
        u.connect(("127.0.0.1", 9))  # fixed-port-ok: connect() on UDP sends nothing
        assert kernel.entry_of(u).state == "ESTABLISHED"


def test_a_closed_socket_has_no_entry():
    s = socket.socket()
    s.close()
    assert kernel.entry_of(s) is None
    assert kernel.tcp_state(s) == "CLOSE"
