"""A lab network without root: hosts, links and a router in namespaces of a private user namespace.

    from course.netlab import home_network, Loss

    with home_network(mtu=1500) as net:                 # home -- router (NAT) -- server
        srv = net.host("server").socket(socket.AF_INET, socket.SOCK_DGRAM)
        srv.bind(("198.51.100.10", 0))
        cli = net.host("home").socket(socket.AF_INET, socket.SOCK_DGRAM)
        cli.sendto(b"hi", srv.getsockname())
        srv.recvfrom(100)                               # (b'hi', ('203.0.113.1', ...)): the kernel's NAT
        net.host("home").run(learner_function, ...)     # a learner's own socket.socket() inside home
        with net.host("home").capture() as cap: ...     # live capture; cap.save("x.pcap")

or `Lab()` for a topology of your own (add_host, link with an MTU, a rate and a Loss; on a host:
route, add_address, bridge (a LAN of several hosts), forwarding, masquerade, filter and drop with
counters, and what it counts: snmp, read_sysctl). Hosts are IPv4 only unless made with
add_host(name, ipv6=True), which leaves IPv6 on and takes addresses of 2001:db8::/32 (added
without DAD); Host.run(fn, etc={"hosts": ...}) gives fn its own /etc files (a mount namespace of
its own), so that the real getaddrinfo resolves lab names from a hosts file inside the lab. `python -m course netlab demo [--mtu N] [--json]`
runs the demo (course.netlab.demo: run() live, demo() live or else the recording). The lessons'
lab cells (01, 03, 05, 07, 08) share course.netlab.lesson: live, or else the recording after one
line saying why; course.netlab.pcap reads their captures (TCP connections, datagrams and their
fragments, ICMP messages; TCP segments of both families, ARP and IPv6 neighbour discovery).

How it is built, and why this way
---------------------------------
Linux lets an ordinary user make a user namespace, in which that user is root, and network
namespaces owned by it: inside, `ip link add ... type veth`, `nft ... masquerade`, `tc ... tbf`
and packet sockets all work, and they act on the lab's namespaces only. The owner (a Jupyter
kernel) cannot enter them itself: unshare(CLONE_NEWUSER) is refused to a process with threads,
and a kernel has several. So the lab starts one helper process, the agent (agent.py: standard
library only, run with the same interpreter as `python -I -S`), which unshares a user and a
network namespace, makes one more network namespace per host, and from then on runs `ip`, `nft`,
`tc` and `conntrack` in the host asked for, and makes sockets there. A socket belongs to the
namespace it was made in for its whole life, so the agent passes it back over a Unix socket
(SCM_RIGHTS) and the owner uses it as any socket.socket. The choices:

- subprocesses of iproute2 and nftables, not pyroute2 or hand-written netlink: they are what the
  issue measured, what a reader can type in a shell to see the same thing, and installed where
  the course runs; the lab itself needs nothing outside the standard library, so that any
  interpreter the user can read runs it (tests run it as another uid with /usr/bin/python3);
- one long-lived agent, not `unshare`/`nsenter` per command: namespaces made by one process stay
  alive exactly as long as it (and the sockets handed out) do; when it ends, they end;
- `fork()` for `Host.run(fn)`: the learner's function lives only in the kernel's memory, so a
  copy of the kernel (one thread: allowed to setns into the user, then the network namespace)
  runs it inside the host and sends back the result; sockets it makes with plain socket.socket()
  are the host's.

Safety and cleanup. A lab has no interface to the machine's network and no route out; its
addresses are RFC 1918's 192.168.0.0/16 (home) and RFC 5737's documentation networks
203.0.113.0/24, 198.51.100.0/24 and 192.0.2.0/24 (the "Internet"), and on hosts with IPv6 RFC
3849's documentation prefix 2001:db8::/32, and nothing else is accepted.
Every LabSocket checks before its first connect or send that its namespace (SIOCGSKNS, the inode)
is its host's, and a run() child checks its own before it calls fn: a half-built lab or a plain
socket.socket() can never send a lab address out of the machine's namespace. The agent dies with
the thread that started it (PR_SET_PDEATHSIG) and when its socket closes; leaving the `with`
block closes every socket and capture the lab handed out and waits for the agent: after a normal
exit, an exception or a killed kernel, no namespace, process or interface is left.

Where user namespaces are refused (some containers, Binder, a sandbox such as the course's grader,
Ubuntu 23.10+'s AppArmor restriction, where unshare succeeds and only the first privileged
operation fails) the agent says so before anything else, having tried to bring up lo and add a
veth pair: `Lab()` raises SetupError with one sentence saying why and what to do, within its
timeout, and callers show a recording instead (demo() does).
"""
from course.netlab.demo import home_network
from course.netlab.lab import LAB_NETWORKS, LAB_NETWORKS6, ConntrackEntry, Host, Lab, LabSocket, Link, available, refusal, socket_netns
from course.netlab.pcap import Capture, Frame, Packet, read_pcap, write_pcap
from course.netlab.rules import Loss

__all__ = [
    "LAB_NETWORKS",
    "LAB_NETWORKS6",
    "Lab",
    "Host",
    "Link",
    "LabSocket",
    "Loss",
    "ConntrackEntry",
    "Capture",
    "Frame",
    "Packet",
    "home_network",
    "available",
    "refusal",
    "socket_netns",
    "read_pcap",
    "write_pcap",
]
