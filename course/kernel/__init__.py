"""The course's one window on the kernel's sockets (Linux), read without root.

- `course.kernel.proc`: the /proc reader (/proc/net/{tcp,tcp6,udp,udp6}, /proc/self/fd): every
  socket of this network namespace, the TCP state of a socket this process holds, which sockets it
  has open (to catch a learner's leaked socket);
- `course.kernel.diag`: the sock_diag (netlink) client, as `ss` asks;
- `course.kernel.window`: which of the two answers questions about TCP connections, chosen once;
- `course.kernel.tcpinfo`: TCP_INFO of one connection;
- `course.kernel.states`: a connection's state over time, by socket or 4-tuple (wait_for_state,
  StateRecorder, the TIME_WAIT timer);
- `course.kernel.host`: `ss`, an interface's MTU, and what a thread of this process waits for.

Every public name is also here: `from course.kernel import tcp_state` as before.
"""
from __future__ import annotations

from course.kernel.host import interface_mtu, ss, thread_waits_on_io
from course.kernel.proc import (
    PROC_TABLES,
    TCP_STATES,
    USER_HZ,
    SocketEntry,
    all_sockets,
    entry_of,
    parse_proc_net,
    socket_inodes_of_this_process,
    sockets_on_port,
    states_on_port,
    tcp_state,
)
from course.kernel.states import (
    Connection,
    StateRecorder,
    connection_of,
    connection_state,
    on_port,
    time_wait_remaining,
    wait_for_state,
)
from course.kernel.tcpinfo import TCP_INFO_FORMAT, TCP_INFO_SIZE, TCP_TIMEWAIT_LEN, TcpInfo, tcp_info

__all__ = [
    "thread_waits_on_io",
    "TCP_STATES",
    "PROC_TABLES",
    "SocketEntry",
    "parse_proc_net",
    "all_sockets",
    "sockets_on_port",
    "socket_inodes_of_this_process",
    "entry_of",
    "tcp_state",
    "states_on_port",
    "TCP_INFO_FORMAT",
    "TCP_INFO_SIZE",
    "USER_HZ",
    "TCP_TIMEWAIT_LEN",
    "TcpInfo",
    "tcp_info",
    "Connection",
    "connection_of",
    "connection_state",
    "on_port",
    "wait_for_state",
    "StateRecorder",
    "time_wait_remaining",
    "ss",
    "interface_mtu",
]
