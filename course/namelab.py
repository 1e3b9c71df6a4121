"""A name with two addresses on a real link: assignment 08's lab demos (course.netlab).

On loopback, section 2 of assignment 08 imitates a name with two addresses with a resolver that
answers from a table, and a refusing IPv6 address with a socket on ::1. Here the course's lab
network builds one real link between two hosts that both have IPv4 and IPv6 (Lab.add_host(name,
ipv6=True); RFC 1918 and RFC 3849 documentation addresses):

    home 192.168.1.2, 2001:db8:1::2  ---- one link ----  www 192.168.1.80, 2001:db8:1::80

The client runs inside home (Host.run), in a process that has its own /etc (a mount namespace of
its own, each file bind-mounted over the machine's): a hosts file that gives `www.lab.test` both
addresses, an nsswitch.conf that says `hosts: files` and a resolv.conf whose only server is
home's own 127.0.0.1, where nothing listens. The real `socket.getaddrinfo` answers from that hosts
file, sorted as RFC 6724 says (IPv6 first: home has an IPv6 source address); nothing can leave
for a DNS server, and the lab has no route out anyway. `nowhere.lab.test` is not in the file:
getaddrinfo fails with EAI_NONAME at once, and the capture shows no query.

www listens on its IPv4 address only. The client tries every answer in order, each with its own
deadline (exercise 1's connect_any, written out here so that it can say what each attempt got):

- `refused()`: the SYN to [2001:db8:1::80]:port finds no socket, and www's kernel answers it with
  a RST (ConnectionRefusedError at once); the SYN to 192.168.1.80:port is answered with a SYN-ACK;
- `silent()`: a filter rule on www drops every segment to the IPv6 address without a word (what a
  firewall does): the first attempt costs exactly its deadline (TimeoutError), then IPv4 connects.

Each returns a `NameRun` (course.netlab.lesson's LabRun): `evidence` (what neither timing nor port
numbers change: the hosts file, the answers, each attempt's outcome, the flags of the captured
handshakes; the same in a live run and in the recording, which the tests compare), `measured` (this
run's port, times and the segments' count), `capture` (the captured lines), and whether it ran live.
Where no lab can be built (SetupError: user namespaces refused, as on Binder and in the grading
sandbox) or the live run fails, it returns the recording (course/data/lab-names.json, made by
`record()`), and `print()` first says why in one line. A refusal is remembered for the process.

`python -m course.namelab` runs both demos and prints them; `python -m course.namelab record`
rewrites the recording (maintainers).
"""
from __future__ import annotations

import errno
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from course.deadline import wait_for
from course.errors import PeerError
from course.netlab import lesson
from course.netlab.lab import Lab
from course.netlab.pcap import neighbour_messages, tcp_packets

__all__ = [
    "NAME",
    "MISSING",
    "HOME",
    "WWW",
    "ATTEMPT_TIMEOUT",
    "HOSTS",
    "RECORDING",
    "NameRun",
    "lab",
    "etc_files",
    "live",
    "load_recording",
    "refused",
    "silent",
    "record",
    "forget_refusal",
    "main",
]

NAME = "www.lab.test"  # .test: reserved for testing (RFC 6761), never a real name
MISSING = "nowhere.lab.test"
HOME = {"ipv4": "192.168.1.2", "ipv6": "2001:db8:1::2"}
WWW = {"ipv4": "192.168.1.80", "ipv6": "2001:db8:1::80"}
ATTEMPT_TIMEOUT = 1.5  # seconds per attempt: a dropped SYN is sent again after 1 s, so the capture shows it
TIMEOUT = 10.0  # seconds: every other blocking step and the lab itself
RUN_TIMEOUT = 15.0
RECORDING = lesson.DATA / "lab-names.json"
# home's own files, as the process that resolves sees them. The IPv4 line comes first on purpose:
# getaddrinfo does not keep the file's order, it sorts its answers (RFC 6724).
HOSTS = (f"# /etc/hosts of the lab host home (course.namelab)\n127.0.0.1\tlocalhost\n::1\tlocalhost\n"
         f"{WWW['ipv4']}\t{NAME}\n{WWW['ipv6']}\t{NAME}\n")
NSSWITCH = "# course.namelab: names come from /etc/hosts only, never from DNS\nhosts: files\n"
RESOLV = ("# course.namelab: no reachable name server (home's own loopback, where nothing listens); "
          "nsswitch.conf does not ask DNS anyway\nnameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
GAI = "# course.namelab: glibc's defaults, RFC 6724's table (this machine's own gai.conf is not read here)\n"

_fallback = lesson.Fallback(remember_refusal=True, failed_runs=True)


def etc_files() -> dict[str, str]:
    """The /etc files the client's process sees (Host.run's `etc`): the hosts file, and, where this
    machine has them to cover, nsswitch.conf, resolv.conf and an empty gai.conf."""
    files = {"hosts": HOSTS}
    for name, text in (("nsswitch.conf", NSSWITCH), ("resolv.conf", RESOLV), ("gai.conf", GAI)):
        if os.path.isfile(os.path.realpath(os.path.join("/etc", name))):
            files[name] = text
    return files


def lab() -> Lab:
    """The lab of both demos (not yet entered): home and www on one link, IPv4 and IPv6 on both."""

    def build(net: Lab) -> None:
        home, www = net.add_host("home", ipv6=True), net.add_host("www", ipv6=True)
        net.link(home, www, f"{HOME['ipv4']}/24", f"{WWW['ipv4']}/24")
        home.add_address(f"{HOME['ipv6']}/64", "eth0")
        www.add_address(f"{WWW['ipv6']}/64", "eth0")

    return Lab(build, timeout=TIMEOUT)


# ----------------------------------------------------------------------------------------------
# The client, inside home
# ----------------------------------------------------------------------------------------------
def _client(name: str, port: int, timeout: float) -> dict:
    """Runs inside home with its own /etc: resolve `name` with the real getaddrinfo, then try each
    answer in order, each attempt with its own deadline, and say what each got."""
    with open("/etc/hosts") as f:
        hosts = [line for line in f.read().splitlines() if line and not line.startswith("#")]
    answers = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    started = time.monotonic()
    try:
        socket.getaddrinfo(MISSING, port, type=socket.SOCK_STREAM)
        missing = "resolved"
    except socket.gaierror as exc:
        missing = f"socket.gaierror: {exc}"
    missing_ms = (time.monotonic() - started) * 1000
    attempts = []
    for family, type_, proto, _canonname, sockaddr in answers:
        sock = socket.socket(family, type_, proto)
        began = time.monotonic()
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            attempts.append({"family": family.name, "address": sockaddr[0], "outcome": type(exc).__name__,
                             "errno": errno.errorcode.get(exc.errno or 0), "said": str(exc),
                             "ms": round((time.monotonic() - began) * 1000, 3)})
            continue
        with sock:
            attempts.append({"family": family.name, "address": sockaddr[0], "outcome": "connected", "errno": None,
                             "said": "", "ms": round((time.monotonic() - began) * 1000, 3), "local": list(sock.getsockname()[:2])})
        break
    return {"hosts": hosts, "answers": [[family.name, list(sockaddr)] for family, _, _, _, sockaddr in answers],
            "missing": missing, "missing_ms": round(missing_ms, 3), "attempts": attempts}


def _exchange(net: Lab, drop_ipv6: bool) -> tuple[dict, dict, list]:
    home, www = net.host("home"), net.host("www")
    listener = www.socket(socket.AF_INET)  # IPv4 only: nothing listens on www's IPv6 address
    listener.bind((WWW["ipv4"], 0))
    listener.listen(4)
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]
    rule = f"ip6 daddr {WWW['ipv6']} tcp dport {port}"
    if drop_ipv6:
        www.drop(rule, "input")
    with home.capture("eth0") as cap:
        got = home.run(_client, NAME, port, ATTEMPT_TIMEOUT, timeout=RUN_TIMEOUT, etc=etc_files())
        if got["attempts"][-1]["outcome"] != "connected":
            raise PeerError(f"the client inside home did not connect to {NAME} port {port}: {got['attempts']}")
        conn, peer = listener.accept()
        conn.close()

        def handshakes_seen() -> list | None:
            cap.poll()
            segments = tcp_packets(cap.frames, port)
            return segments if any(p.version == 4 and p.flags == "ACK" and p.outgoing for p in segments) else None

        segments = wait_for(handshakes_seen, TIMEOUT, lambda: f"the capture on home's eth0 does not show the handshake to "
                                                              f"{WWW['ipv4']}:{port} within {TIMEOUT} s", error=PeerError)
    dropped = www.counters("input")["input"] if drop_ipv6 else 0
    neighbours = neighbour_messages(cap.frames)
    t0 = min([p.t_ns for p in segments] + [m.t_ns for m in neighbours])
    rows = _rows(segments, neighbours, t0)
    v6 = [p for p in segments if p.version == 6]
    evidence = {
        "name": NAME, "hosts": got["hosts"], "answers": [[family, sockaddr[0]] for family, sockaddr in got["answers"]],
        "missing": got["missing"], "listening": ["AF_INET", WWW["ipv4"]], "dropped_ipv6": drop_ipv6,
        "attempts": [[a["family"], a["address"], a["outcome"], a["errno"]] for a in got["attempts"]],
        "ipv6_segments": sorted({("home" if p.outgoing else "www") + " " + p.flags for p in v6}),
        "ipv4_handshake": [("home" if p.outgoing else "www") + " " + p.flags for p in segments if p.version == 4][:3],
        "accepted_from": peer[0], "dns_packets": sum(53 in (p.src[1], p.dst[1]) for p in tcp_packets(cap.frames))
        + _udp_to_port_53(cap.frames),
    }
    measured = {"port": port, "attempt_timeout_s": ATTEMPT_TIMEOUT, "attempt_ms": [a["ms"] for a in got["attempts"]],
                "said": [a["said"] for a in got["attempts"]], "missing_ms": got["missing_ms"],
                "ipv6_syns": sum(p.flags == "SYN" for p in v6), "dropped_by_www": dropped,
                "local": got["attempts"][-1]["local"], "rule": rule if drop_ipv6 else ""}
    return evidence, measured, rows


def _udp_to_port_53(frames) -> int:
    """UDP datagrams to or from port 53 (DNS) in a capture, both families (there must be none)."""
    count = 0
    for fr in frames:
        data = fr.data[14:]
        if fr.ethertype == 0x0800 and len(data) >= 28 and data[9] == 17:
            udp = data[(data[0] & 0x0F) * 4:]
        elif fr.ethertype == 0x86DD and len(data) >= 48 and data[6] == 17:
            udp = data[40:]
        else:
            continue
        count += 53 in (int.from_bytes(udp[0:2], "big"), int.from_bytes(udp[2:4], "big"))
    return count


def _rows(segments, neighbours, t0: int) -> list[dict]:
    """The capture as plain rows in time order: who sent, what, to whom; the TCP rows up to each
    attempt's answer (the RST, or the handshake's last ACK: the connection's end is not shown)."""
    asks = {"ARP request": "ARP request: who has {}?", "ARP reply": "ARP reply: {} is here",
            "neighbour solicitation": "IPv6 neighbour solicitation: who has {}?",
            "neighbour advertisement": "IPv6 neighbour advertisement: {} is here"}
    rows = [{"t_ms": round((m.t_ns - t0) / 1e6, 3), "outgoing": m.outgoing, "what": asks[m.kind].format(m.about),
             "to": ""} for m in neighbours]
    shown: dict[tuple, int] = {}
    for p in segments:
        key = (p.src, p.dst) if p.outgoing else (p.dst, p.src)
        if shown.get(key, 0) < 0:
            continue  # this connection's answer is shown already
        rows.append({"t_ms": round((p.t_ns - t0) / 1e6, 3), "outgoing": p.outgoing, "what": p.flags,
                     "to": p.where(p.dst if p.outgoing else p.src)})
        done = "RST" in p.flags or (p.outgoing and p.flags == "ACK")
        shown[key] = -1 if done else shown.get(key, 0) + 1
    return sorted(rows, key=lambda r: r["t_ms"])


# ----------------------------------------------------------------------------------------------
# What each demo shows
# ----------------------------------------------------------------------------------------------
def _run_refused(net: Lab) -> tuple[dict, dict, list]:
    return _exchange(net, drop_ipv6=False)


def _run_silent(net: Lab) -> tuple[dict, dict, list]:
    return _exchange(net, drop_ipv6=True)


def _common(run: "NameRun") -> list[str]:
    e, m = run.evidence, run.measured
    port = m["port"]
    out = ["home's /etc/hosts (its own: nsswitch.conf says hosts: files, so getaddrinfo reads only this file):"]
    out += [f"  {line.split()[0]:<16}{' '.join(line.split()[1:])}" for line in e["hosts"]]
    out.append(f"socket.getaddrinfo({e['name']!r}, {port}, type=SOCK_STREAM) inside home, in this order:")
    out += [f"  {family:<9} {address}" for family, address in e["answers"]]
    out.append(f"{MISSING!r}, in no file: {e['missing']} (after {m['missing_ms']:.2f} ms; DNS packets on the link: "
               f"{e['dns_packets']})")
    where = f"{e['listening'][1]}:{port}"
    out.append(f"www listens on {where} only ({e['listening'][0]}); the client tries each answer in order, "
               f"{m['attempt_timeout_s']} s per attempt:")
    for i, ((family, address, outcome, _errno), ms, said) in enumerate(zip(e["attempts"], m["attempt_ms"], m["said"]), 1):
        target = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        what = f"{outcome}: {said}" if said else outcome
        out.append(f"  {i}. {target:<24} {what} after {ms:.1f} ms")
    return out


def _capture_lines(run: "NameRun") -> list[str]:
    out = ["captured on home's eth0 (ms from the first frame; each connection up to its answer):"]
    for r in run.capture:
        arrow = "home ->" if r["outgoing"] else "home <-"
        what = f"{r['what']:<8} {'to' if r['outgoing'] else 'from'} {r['to']}" if r["to"] else r["what"]
        out.append(f"  {r['t_ms']:>8.1f}  {arrow} {what}")
    return out


def _show_refused(run: "NameRun") -> list[str]:
    e, m = run.evidence, run.measured
    return _common(run) + _capture_lines(run) + [
        f"nothing listens on [{WWW['ipv6']}]:{m['port']}: www's kernel answered that SYN with a RST (with ACK: it "
        f"acknowledges the SYN it refuses), and connect raised ConnectionRefusedError at once; the SYN to "
        f"{WWW['ipv4']}:{m['port']} got a SYN-ACK",
        f"www accepted the connection from {e['accepted_from']} (home's port {m['local'][1]})",
    ]


def _show_silent(run: "NameRun") -> list[str]:
    e, m = run.evidence, run.measured
    first = m["attempt_ms"][0]
    syns = [r["t_ms"] for r in run.capture if r["to"].startswith("[") and r["what"] == "SYN"]
    again = f"; home sent it again {syns[1] - syns[0]:.0f} ms later" if len(syns) > 1 else ""
    return [f"www's firewall drops, silently: {m['rule']} (nftables, chain input)"] + _common(run) + _capture_lines(run) + [
        f"no answer at all to the SYN to [{WWW['ipv6']}]:{m['port']} (www's rule dropped {m['dropped_by_www']} "
        f"segment(s){again}): the first attempt cost {first:.1f} ms, its deadline being "
        f"{m['attempt_timeout_s'] * 1000:.0f} ms; without a deadline per attempt, connect would have waited for "
        f"every SYN retransmission (about 127 s, net.ipv4.tcp_syn_retries = 6) before trying IPv4",
        f"www accepted the connection from {e['accepted_from']} (home's port {m['local'][1]})",
    ]


DEMOS = {"refused": (_run_refused, _show_refused), "silent": (_run_silent, _show_silent)}


# ----------------------------------------------------------------------------------------------
# A demo's result; live, or else the recording
# ----------------------------------------------------------------------------------------------
@dataclass
class NameRun(lesson.LabRun):
    """One demo's result (course.netlab.lesson.LabRun), with `capture` (the captured rows)."""

    capture: list = field(default_factory=list)

    DEMOS = DEMOS
    DETAIL = "capture"
    LAB = MADE_BY = (f"home {HOME['ipv4']} {HOME['ipv6']} -- one link -- www {WWW['ipv4']} {WWW['ipv6']}, "
                     f"{NAME} from home's own /etc/hosts")


def live(name: str) -> NameRun:
    """Run one demo now in a new lab; SetupError where no lab can be built."""
    return NameRun.run_live(name, lab())


def load_recording(name: str, why: str = "") -> NameRun:
    """The recorded run of one demo (made live by record())."""
    return NameRun.from_recording(RECORDING, name, why)


def _demo(name: str) -> NameRun:
    return _fallback.run(lambda: live(name), lambda why: load_recording(name, why))


def forget_refusal() -> None:
    """Try a live lab again at the next demo (after the machine was fixed, say)."""
    _fallback.forget()


def refused() -> NameRun:
    """www.lab.test from home's hosts file, IPv6 first; its IPv6 address refuses (RST), IPv4 connects."""
    return _demo("refused")


def silent() -> NameRun:
    """The same, with www's IPv6 address dropping every SYN: the first attempt costs its deadline."""
    return _demo("silent")


def record(path: Path | None = None) -> Path:
    """Run both demos live and write the recording (maintainers)."""
    return lesson.write_recording(path or RECORDING, "course.namelab.record(): each demo live in course.namelab.lab() "
                                  "(home and www on one link, IPv4 and IPv6), the client inside home with its own "
                                  "/etc/hosts, captured on home's eth0",
                                  {name: live(name).recorded_form() for name in DEMOS})


def _print_all() -> None:
    for name in DEMOS:
        _demo(name).print()


def main(argv: list[str] | None = None) -> int:
    return lesson.main("course.namelab", record, argv, show=_print_all)


if __name__ == "__main__":
    raise SystemExit(main())
