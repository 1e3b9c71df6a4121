"""`python -m course`: start any reference peer on a loopback address, to talk to it with nc,
socat or a program in another language (the seeds' Go programs: see the *-seed002/-seed004 peers).

    python -m course list
    python -m course serve tcp-echo                 # port 0: prints the address the kernel chose
    python -m course serve udp-sum --host 127.0.0.2 --port 9000
    python -m course serve udp-chat --reply upper   # a peer's options are flags (list shows them)
    python -m course netlab ARGS                    # the lab network (course.netlab)

It serves until Ctrl-C (or --seconds N), then closes everything. A TCP peer started here waits for a
silent client as long as the client stays connected (no idle limit) unless --idle SECONDS is given.

The peers come from the table in course/peers.py: `list` imports no lesson module, and `serve`
imports only the module of the peer it starts.
"""
from __future__ import annotations

import argparse
import importlib
import math
import signal
import sys
import threading
import time

from course.errors import SetupError
from course.peers import PEERS, REPLIES

__all__ = [
    "load_peers",
    "peer_class",
    "summary",
    "build_parser",
    "list_peers",
    "main",
]

WAIT_POLL = 0.05  # seconds: how often the serving main thread looks at Ctrl-C and --seconds


def peer_class(name: str) -> type:
    """The class of one peer of the table, importing its module (and only that one)."""
    entry = PEERS[name]
    return getattr(importlib.import_module(entry["module"]), entry["class"])


def load_peers() -> dict[str, type]:
    """Every peer of the table, name -> class (this imports every module the table names)."""
    return {name: peer_class(name) for name in sorted(PEERS)}


def summary(cls: type) -> str:
    """The first line of a peer class's docstring."""
    import inspect

    doc = inspect.getdoc(cls) or ""
    return doc.splitlines()[0] if doc else cls.__name__


# ----------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; give 0 (the kernel chooses) or 1-65535") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number; give 0 (the kernel chooses) or 1-65535")
    return port


def _seconds(text: str, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not ((value >= 0 if zero else value > 0) and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} is not {'0 or ' if zero else ''}a positive number of seconds")
    return value


def _positive(text: str) -> float:
    return _seconds(text, zero=False)


def _non_negative(text: str) -> float:
    return _seconds(text, zero=True)


def _bytes(text: str) -> bytes:
    import codecs

    try:
        return codecs.escape_decode(text.encode("utf-8"))[0]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} has a bad escape ({exc})") from None


def _indices(values: list[str]):
    if values == ["all"]:
        return "all"
    try:
        return [int(v) for v in values]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{' '.join(values)!r} should be datagram numbers (0 = the first) or all") from None


_TYPES = {"int": int, "float": float, "text": str, "bytes": _bytes, "ints": int, "texts": str, "bytes-list": _bytes,
          "indices": str, "choice": str}


def _flag_usage(option: dict) -> str:
    kind = option["kind"]
    if kind == "switch":
        return option["flag"]
    if kind == "choice":
        return f"{option['flag']} {{{','.join(option['choices'])}}}"
    metavar = {"int": "N", "float": "S", "text": "TEXT", "bytes": "BYTES", "ints": "N [N ...]", "texts": "TEXT [TEXT ...]",
               "bytes-list": "BYTES [BYTES ...]", "indices": "N [N ...]|all"}[kind]
    return f"{option['flag']} {metavar}"


def _add_option(parser: argparse.ArgumentParser, option: dict) -> None:
    kind, dest = option["kind"], "opt_" + option["param"]
    if kind == "switch":
        parser.add_argument(option["flag"], dest=dest, action="store_const", const=option.get("value", True),
                            default=argparse.SUPPRESS, help=option["help"])
        return
    kwargs = {"dest": dest, "type": _TYPES[kind], "default": argparse.SUPPRESS, "help": option["help"]}
    if kind in ("ints", "texts", "bytes-list", "indices"):
        kwargs["nargs"] = "+"
    if kind == "choice":
        kwargs["choices"] = option["choices"]
    if option["param"] == "deadline":
        kwargs["type"] = _non_negative
    parser.add_argument(option["flag"], **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m course", description="Start a reference peer of the sockets course on loopback.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the reference peers, what each does from the command line, and its flags")
    sub.add_parser("netlab", help="the lab network: python -m course netlab --help", add_help=False)
    serve = sub.add_parser("serve", help="start one reference peer: python -m course serve NAME --help")
    peers = serve.add_subparsers(dest="peer", required=True, metavar="NAME", parser_class=_Parser)
    for name, entry in sorted(PEERS.items()):
        p = peers.add_parser(name, help=entry["does"], description=f"{name} ({entry['transport']}): {entry['does']}.")
        p.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
        p.add_argument("--port", type=_port, default=0, help="0 (default) lets the kernel choose a free port")
        p.add_argument("--seconds", type=_positive, default=None, help="stop after this many seconds (default: at Ctrl-C)")
        if entry["idle"]:
            p.add_argument("--idle", type=_positive, default=None,
                           help="close a connection silent for this many seconds (default: no limit)")
        for option in entry["options"]:
            _add_option(p, option)
    return parser


def _constructor_kwargs(name: str, args: argparse.Namespace) -> dict:
    kwargs = {}
    for option in PEERS[name]["options"]:
        dest = "opt_" + option["param"]
        if not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        if option["kind"] == "indices":
            value = _indices(value)
        elif option.get("convert"):
            value = REPLIES[value]
        kwargs[option["param"]] = value
    return kwargs


def list_peers() -> str:
    width = max(map(len, PEERS))
    lines = [
        "Reference peers: python -m course serve NAME [--host 127.0.0.1] [--port 0] [--seconds S] [flags]",
        "Each binds a loopback address (port 0: the kernel chooses, and the peer prints it) and serves until Ctrl-C.",
        "A TCP peer marked [--idle S] waits for a silent client as long as it stays connected, unless --idle S is given.",
        "",
    ]
    for name, entry in sorted(PEERS.items()):
        flags = (["[--idle S]"] if entry["idle"] else []) + [f"[{_flag_usage(o)}]" for o in entry["options"]]
        lines.append(f"{name:<{width}}  {entry['transport']}  {entry['does']}")
        if flags:
            lines.append(f"{'':<{width}}       {' '.join(flags)}")
    return "\n".join(lines)


def _netlab(argv: list[str]) -> int:
    try:
        netlab_main = importlib.import_module("course.netlab.__main__")
    except ModuleNotFoundError as exc:
        if exc.name not in ("course.netlab", "course.netlab.__main__"):
            raise
        print("python -m course netlab: the lab network (course/netlab) is not in this copy of the course; "
              "update it (git pull) or use the other commands", file=sys.stderr)
        return 2
    status = netlab_main.main(argv)
    return 0 if status is None else int(status)


class _Interrupt:
    """Ctrl-C while a peer serves: remember it; the main loop notices within WAIT_POLL s."""

    def __init__(self):
        self.seen = False
        self.previous = None

    def __call__(self, signum, frame) -> None:
        self.seen = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["netlab"]:
        return _netlab(argv[1:])
    if argv[:1] == ["serve"] and len(argv) > 1 and not argv[1].startswith("-") and argv[1] not in PEERS:
        print(f"no reference peer named {argv[1]!r}; choose one of: {', '.join(sorted(PEERS))}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    if args.command == "list":
        print(list_peers())
        return 0

    entry = PEERS[args.peer]
    cls = peer_class(args.peer)  # the one lesson module this peer needs (Ctrl-C here: __main__ exits at once)
    try:
        server = cls(host=args.host, port=args.port, **_constructor_kwargs(args.peer, args))
    except SetupError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (TypeError, ValueError) as exc:  # a flag value the peer refuses
        print(f"python -m course serve {args.peer}: {exc}", file=sys.stderr)
        return 2
    if entry["transport"] == "tcp":  # recv_or_stop's limit: none from the command line unless --idle
        server.idle_limit = math.inf if getattr(args, "idle", None) is None else args.idle
    with _Interrupt() as interrupt:
        try:
            server.start()
        except SetupError as exc:
            print(exc, file=sys.stderr)
            return 2
        try:
            note = ""
            if entry["idle"]:
                note = "no idle limit; " if args.idle is None else f"closes a connection silent for {args.idle:g} s; "
            print(f"{args.peer} ({entry['transport']}) listening on {server.where}; {note}Ctrl-C to stop", flush=True)
            until = None if args.seconds is None else time.monotonic() + args.seconds
            while not interrupt.seen and (until is None or time.monotonic() < until):
                time.sleep(WAIT_POLL)  # a signal ends the sleep early; the handler only sets a flag
        finally:
            server.close()
    print("stopped", flush=True)
    return 0
