"""`python -m course netlab ...` (or `python -m course.netlab ...`): the lab network from a shell.

    python -m course netlab demo [--mtu N] [--json] [--no-nat] [--no-loss] [--pcap FILE]
    python -m course netlab check        # can a lab be built here? one line, exit status 0 or 1
    python -m course netlab record       # maintainers: rewrite course/netlab/recording.py

`demo --json` prints one JSON object: {"capture": "live" | "recording", "nat": {"private":
"192.168.1.2:6789", "seen_by_server": "203.0.113.1:PORT", ...}, "mss": M, "handshake": ["SYN",
"SYN+ACK", "ACK"], "retransmissions": N, "fragments": K, ...}. Where no lab can be built it
prints the recording of the same run, with "capture": "recording" and the reason in "why".
"""
from __future__ import annotations

import argparse
import json
import sys

from course.errors import CourseError, SetupError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course netlab",
                                     description="The course's lab network: hosts, links and a router in namespaces, without root.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build the small lab and show NAT, the MSS, a retransmission and IP fragments")
    demo.add_argument("--mtu", type=int, default=1500, help="the MTU of every link (default 1500)")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.add_argument("--no-nat", action="store_true", help="the router forwards without translating")
    demo.add_argument("--no-loss", action="store_true", help="the link loses nothing (no retransmission)")
    demo.add_argument("--pcap", metavar="FILE", help="save the capture on home's eth0 (for Wireshark or tcpdump -r)")
    demo.add_argument("--timeout", type=float, default=10.0, help="seconds any one step may take (default 10)")
    sub.add_parser("check", help="say whether a lab can be built here, and why not")
    sub.add_parser("record", help="run the demo live for MTU 1400, 1500, 9000 and save it as the recording")
    args = parser.parse_args(argv)

    import course.netlab.demo as demo_module
    from course.netlab.lab import available

    if args.command == "check":
        why = available()
        print(why or "a lab network can be built here")
        return 0 if why is None else 1
    if args.command == "record":
        print(f"wrote {demo_module.record()}")
        return 0
    if not 576 <= args.mtu <= 65535:
        parser.error(f"--mtu is between 576 and 65535, got {args.mtu}")
    try:
        result = demo_module.demo(args.mtu, nat=not args.no_nat, loss=not args.no_loss, pcap=args.pcap, timeout=args.timeout)
    except SetupError as exc:
        print(exc, file=sys.stderr)
        return 2
    except CourseError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print(demo_module.table(result))
        if args.pcap and result["capture"] == "live":
            print(f"capture saved   {args.pcap} (tcpdump -nn -r {args.pcap})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
