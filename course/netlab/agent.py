"""The lab's agent: the one process that lives inside the lab's user namespace.

Started by `course.netlab.lab.Lab` as `python -I -S agent.py PARENT_PID FD`, FD being its end of a
SOCK_SEQPACKET Unix socket pair. Standard library only, no `course` import:
any interpreter the user can read runs it.

What it does, in order:
1. unshare(CLONE_NEWUSER | CLONE_NEWNET) and map the caller's uid and gid to 0: it is now root of
   a user namespace that owns an empty network namespace (the lab's "base", never given an
   interface), and of nothing else on the machine;
2. asks to be killed (PR_SET_PDEATHSIG) when the thread that started it ends, and checks that
   its parent is still the one it was told (else it exits at once);
3. tries the privileged operations a lab needs (bring lo up, write a net sysctl, add and delete
   a veth pair): on
   Ubuntu 23.10+ the unshare succeeds and only these fail (AppArmor), so the first message says
   whether a lab can be built here, and why not;
4. answers requests, one JSON object per message, until its socket closes: make a host (a new
   network namespace, IPv4 only unless asked for IPv6), run a command in one (ip, nft, tc,
   conntrack), write a sysctl under /proc/sys/net of one, read a file under /proc/net of one,
   make a socket in one and pass it back (SCM_RIGHTS), pass the namespaces' own file descriptors
   back.

The agent is single-threaded on purpose: setns() moves the whole process, and a child it starts
(ip, nft...) runs in the namespace the agent is in at that moment.
"""
import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17  # struct ethtool_value {u32 cmd; u32 data}
IFF_UP = 0x1
SO_NETNS_COOKIE = 71
MAX_MESSAGE = 1 << 20
MAX_OUTPUT = 256 * 1024
# absolute directories only (an empty or relative PATH entry would mean the current directory)
TOOL_PATH = os.pathsep.join([d for d in os.environ.get("PATH", "").split(os.pathsep) if os.path.isabs(d)]
                            + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"])

libc = ctypes.CDLL(None, use_errno=True)

__all__ = ["Agent", "Refused", "main"]


class Refused(Exception):
    """A step failed: (stage, errno, detail)."""

    def __init__(self, stage: str, err: int, detail: str):
        super().__init__(stage, err, detail)
        self.stage, self.err, self.detail = stage, err, detail


def _check(result: int, stage: str, detail: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise Refused(stage, err, f"{detail}: {os.strerror(err)}")


def setns(fd: int, nstype: int) -> None:
    _check(libc.setns(fd, nstype), "setns", "setns")


def die_with_parent() -> None:
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def tool(name: str) -> str | None:
    import shutil

    return shutil.which(name, path=TOOL_PATH)


def interface_up(name: str) -> None:
    """`ip link set NAME up` without ip: SIOCSIFFLAGS on a socket of the current namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", name.encode(), 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", name.encode(), flags | IFF_UP))


def checksum_offload_off(name: str) -> None:
    """`ethtool -K NAME tx off` without ethtool: a veth leaves the TCP/UDP checksum of what it
    sends to "the hardware" (there is none), so a capture would show wrong checksums; with tx
    checksumming off the kernel computes them, and Wireshark and tcpdump -v agree with them."""
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    req = struct.pack("16sP16x", name.encode(), ctypes.addressof(value))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, req)


def ns_inode(fd: int) -> int:
    return os.fstat(fd).st_ino


class Agent:
    def __init__(self, ctl: socket.socket):
        self.ctl = ctl
        self.base = -1  # the lab's empty starting namespace
        self.user = -1  # the lab's user namespace
        self.hosts: dict[str, int] = {}  # name -> fd of its network namespace
        self.current = None

    # -- namespaces ----------------------------------------------------------------------------
    def start(self) -> dict:
        uid, gid = os.geteuid(), os.getegid()
        _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNET), "unshare", "unshare(CLONE_NEWUSER | CLONE_NEWNET)")
        try:
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"0 {uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"0 {gid} 1")
        except OSError as exc:
            raise Refused("map", exc.errno or 0, f"writing the uid/gid map: {exc.strerror}") from None
        self.user = os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        self.base = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.current = "(base)"
        # the privileged operations a lab needs, tried once: where they fail the namespace is useless
        try:
            interface_up("lo")
        except OSError as exc:
            raise Refused("lo", exc.errno or 0, f"bringing up lo in the new namespace: {exc.strerror}") from None
        try:  # a net sysctl of this namespace: read-only where a container mounts /proc/sys so
            with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                f.write("0")
        except OSError as exc:
            raise Refused("sysctl", exc.errno or 0, f"writing /proc/sys/net/ipv4/ip_forward in the new namespace: {exc.strerror}") from None
        ip = tool("ip")
        if ip is None:
            raise Refused("tools", errno.ENOENT, "the lab needs `ip` from iproute2, which is not installed")
        probe = subprocess.run([ip, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"],
                               capture_output=True, text=True, timeout=10, preexec_fn=die_with_parent)
        if probe.returncode != 0:
            raise Refused("veth", errno.EPERM, f"`ip link add probe0 type veth`: {probe.stderr.strip() or probe.returncode}")
        subprocess.run([ip, "link", "del", "probe0"], capture_output=True, timeout=10, preexec_fn=die_with_parent)
        return {"pid": os.getpid(), "user": ns_inode(self.user), "base": ns_inode(self.base),
                "tools": {name: tool(name) for name in ("ip", "nft", "tc", "conntrack")}}

    def enter(self, host: str) -> None:
        if host not in self.hosts:
            raise KeyError(f"no lab host named {host!r}")
        if self.current != host:
            setns(self.hosts[host], CLONE_NEWNET)
            self.current = host

    def op_host(self, req: dict, fds: list) -> dict:
        name = req["name"]
        if name in self.hosts:
            raise ValueError(f"the lab already has a host named {name!r}")
        setns(self.base, CLONE_NEWNET)
        self.current = "(base)"
        _check(libc.unshare(CLONE_NEWNET), "unshare", "unshare(CLONE_NEWNET)")
        fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.hosts[name] = fd
        self.current = name
        interface_up("lo")
        if req.get("ipv6"):
            # IPv6 on (opt-in): addresses come without DAD (no neighbour solicitations for them, no
            # delay before they can be used), and no router solicitations: the lab has no router
            # advertising prefixes, every address is given by hand
            for key in ("all", "default"):
                for name, value in (("disable_ipv6", "0"), ("accept_dad", "0"), ("dad_transmits", "0"),
                                    ("router_solicitations", "0"), ("accept_ra", "0")):
                    with open(f"/proc/sys/net/ipv6/conf/{key}/{name}", "w") as f:
                        f.write(value)
        else:
            # IPv4 only: no router solicitations, MLD or DAD frames in the captures
            for key in ("all", "default"):
                with open(f"/proc/sys/net/ipv6/conf/{key}/disable_ipv6", "w") as f:
                    f.write("1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                cookie = struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0]
            except OSError:  # before Linux 5.14
                cookie = None
        return {"inode": ns_inode(fd), "cookie": cookie}

    def op_exec(self, req: dict, fds: list) -> dict:
        self.enter(req["host"])
        argv, keep = [], []
        for arg in req["argv"]:
            if arg.startswith("@netns:"):  # another host's namespace, as a path `ip ... netns` accepts
                fd = self.hosts[arg[len("@netns:"):]]
                keep.append(fd)
                arg = f"/proc/self/fd/{fd}"
            argv.append(arg)
        path = tool(argv[0])
        if path is None:
            return {"rc": 127, "out": "", "err": f"{argv[0]}: not installed"}
        try:
            done = subprocess.run([path] + argv[1:], input=req.get("input"), capture_output=True, text=True,
                                  timeout=req.get("timeout", 10), pass_fds=keep, preexec_fn=die_with_parent)
        except subprocess.TimeoutExpired:
            return {"rc": 124, "out": "", "err": f"{argv[0]} did not finish within {req.get('timeout', 10)} s"}
        return {"rc": done.returncode, "out": done.stdout[:MAX_OUTPUT], "err": done.stderr[:MAX_OUTPUT]}

    def op_sysctl(self, req: dict, fds: list) -> dict:
        path = req["path"]
        if not path.startswith("/proc/sys/net/") or ".." in path:
            raise ValueError(f"only /proc/sys/net/ of a lab host can be written, not {path!r}")
        self.enter(req["host"])
        with open(path, "w") as f:
            f.write(str(req["value"]))
        return {}

    def op_read(self, req: dict, fds: list) -> dict:
        path = req["path"]
        if not path.startswith(("/proc/self/net/", "/proc/sys/net/")) or ".." in path:
            raise ValueError(f"only /proc/self/net/ and /proc/sys/net/ of a lab host can be read, not {path!r}")
        self.enter(req["host"])
        try:
            with open(path) as f:
                return {"text": f.read(MAX_OUTPUT)}
        except FileNotFoundError:
            return {"text": None}

    def op_offload(self, req: dict, fds: list) -> dict:
        self.enter(req["host"])
        checksum_offload_off(req["iface"])
        return {}

    def op_socket(self, req: dict, fds: list) -> dict:
        self.enter(req["host"])
        sock = socket.socket(req["family"], req["type"], req.get("proto", 0))
        fds.append(sock.fileno())
        self._keep_until_sent = sock
        return {}

    def op_namespaces(self, req: dict, fds: list) -> dict:
        fds.append(self.user)
        fds.append(self.hosts[req["host"]])
        return {}

    # -- the loop ------------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                data = self.ctl.recv(MAX_MESSAGE)
            except InterruptedError:
                continue
            if not data:
                return  # the owner closed its end, or died: the lab goes with us
            fds: list[int] = []
            self._keep_until_sent = None
            try:
                req = json.loads(data)
                reply = {"ok": True, **getattr(self, "op_" + req["op"])(req, fds)}
            except Refused as exc:
                fds = []
                reply = {"ok": False, "stage": exc.stage, "errno": exc.err, "error": exc.detail}
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the owner as one line
                fds = []
                reply = {"ok": False, "stage": "request", "errno": getattr(exc, "errno", None) or 0,
                         "error": f"{type(exc).__name__}: {exc}"}
            payload = json.dumps(reply).encode()
            if fds:
                socket.send_fds(self.ctl, [payload], fds)
            else:
                self.ctl.send(payload)
            if self._keep_until_sent is not None:
                self._keep_until_sent.close()  # the owner has its own copy now
                self._keep_until_sent = None


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the owner, which then closes us
    parent, fd = int(sys.argv[1]), int(sys.argv[2])
    ctl = socket.socket(fileno=fd)
    agent = Agent(ctl)
    die_with_parent()
    try:
        hello = agent.start()
        die_with_parent()  # set after unshare: a credential change may clear it
        if os.getppid() != parent:
            return 1  # the owner is already gone
        ctl.send(json.dumps({"ok": True, **hello}).encode())
    except Refused as exc:
        ctl.send(json.dumps({"ok": False, "stage": exc.stage, "errno": exc.err, "error": exc.detail}).encode())
        return 1
    agent.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
