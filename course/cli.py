"""`python -m course`: start any reference peer on a loopback address, to talk to it with nc,
socat or a program in another language.

    python -m course list
    python -m course serve tcp-echo                 # port 0: prints the address the kernel chose
    python -m course serve udp-sum --host 127.0.0.2 --port 9000

It serves until Ctrl-C (or --seconds N), then closes everything.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import socket
import sys
import threading

import course
from course.errors import SetupError
from course.serving import REGISTRY

__all__ = [
    "load_peers",
    "summary",
    "main",
]


def load_peers() -> dict[str, type]:
    """Import every public module of the course so that their peers register themselves."""
    for info in pkgutil.iter_modules(course.__path__):
        if not info.name.startswith("_") and info.name not in ("cli", "__main__"):
            importlib.import_module(f"course.{info.name}")
    return dict(sorted(REGISTRY.items()))


def summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.splitlines()[0] if doc else cls.__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course", description="Start a reference peer of the sockets course.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the reference peers")
    serve = sub.add_parser("serve", help="start one reference peer")
    serve.add_argument("peer", help="a name from `python -m course list`")
    serve.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="0 (default) lets the kernel choose a free port")
    serve.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)

    peers = load_peers()
    if args.command == "list":
        width = max(map(len, peers))
        for name, cls in peers.items():
            print(f"{name:<{width}}  {summary(cls)}")
        return 0
    if args.peer not in peers:
        print(f"no reference peer named {args.peer!r}; choose one of: {', '.join(peers)}", file=sys.stderr)
        return 2
    cls = peers[args.peer]
    try:
        server = cls(host=args.host, port=args.port)
        server.start()
    except SetupError as exc:
        print(exc, file=sys.stderr)
        return 2
    proto = "udp" if server.sock_type == socket.SOCK_DGRAM else "tcp"
    try:
        print(f"{args.peer} ({proto}) listening on {server.where}; Ctrl-C to stop", flush=True)
        threading.Event().wait(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    print("stopped", flush=True)
    return 0
