"""The table of reference peers that `python -m course` can start, as plain data: no course module
is imported to read it, so `python -m course list` starts at once (no lesson module, no matplotlib).

Each peer names its module and class (imported only when that peer is served), its transport, one
line saying what it does when started from the command line, and its options as command-line flags:
`kind` says how the flag's text becomes the constructor's argument `param` (course/cli.py does it):

- "int", "float", "text": one value;
- "bytes": text with Python escapes (hello\\n, \\xff) as bytes, UTF-8 for the rest;
- "ints", "texts", "bytes-list": one or more values (--script hi "how are you" exit);
- "switch": a flag without value (True when given);
- "choice": one of `choices`; with `convert`, the name is turned into a function of REPLIES;
- "indices": whole numbers, or the word all.

`idle` says whether the peer reads through `TcpServer.recv_or_stop`, whose idle limit `--idle`
sets (from the command line there is none unless --idle is given).

This table is the one place a peer gets its name: the lesson modules do not register their classes.
tests/test_cli.py checks that every entry names a class of its module that is a
`course.serving.LoopbackServer`, and that every flag names a parameter of that class's constructor.
"""
from __future__ import annotations

__all__ = ["PEERS", "REPLIES"]


def _echo(text: str) -> str:
    return text


def _upper(text: str) -> str:
    return text.upper()


def _got(text: str) -> str:
    return "got: " + text


# Functions a --reply flag names: what a chat peer answers to a line it heard (None: no answer).
REPLIES = {
    "none": None,
    "echo": _echo,
    "upper": _upper,
    "got": _got,
}

_PAYLOAD = {"flag": "--payload", "param": "payload", "kind": "bytes", "help": "the bytes to send (escapes such as \\n allowed)"}
_SEED = {"flag": "--seed", "param": "seed", "kind": "int", "help": "seed of the random chunk sizes"}
_MAX_CHUNK = {"flag": "--max-chunk", "param": "max_chunk", "kind": "int", "help": "largest random chunk, in bytes (default 7)"}
_CLOSE_AFTER = {"flag": "--close-after", "param": "close_after", "kind": "int", "help": "close after this many bytes, mid-message"}
_KEEP_OPEN = {"flag": "--keep-open", "param": "keep_open", "kind": "switch", "help": "keep the connection open after the payload"}
_SEED_DEADLINE = {"flag": "--deadline", "param": "deadline", "kind": "float",
                  "help": "seconds of the seed's one read deadline (default 30, as in seed 002; 0: none)"}

PEERS: dict[str, dict] = {
    "idle-echo": {
        "module": "course.connections", "class": "IdleTimeoutServer", "transport": "tcp", "idle": False,
        "does": "echoes each line; closes a connection silent for --idle-timeout s (30); can cap connections per client IP",
        "options": [
            {"flag": "--idle-timeout", "param": "idle_timeout", "kind": "float", "help": "seconds without a complete line before it closes (default 30)"},
            {"flag": "--max-per-client", "param": "max_per_client", "kind": "int", "help": "open connections allowed per client IP; the next gets an ERROR line"},
            {"flag": "--protocol", "param": "protocol", "kind": "choice", "choices": ["echo", "sum"], "help": "echo lines, or answer seed 002's sum ({\"A\":7,\"B\":4} per line)"},
            {"flag": "--max-requests", "param": "max_requests", "kind": "int", "help": "close a connection after this many replies"},
            {"flag": "--reset-on-idle", "param": "reset_on_idle", "kind": "switch", "help": "close idle connections with RST instead of FIN"},
            {"flag": "--reply-chunk", "param": "reply_chunk", "kind": "int", "help": "send replies in pieces of this many bytes"},
        ],
    },
    "stream-chunks": {
        "module": "course.stream_peers", "class": "ChunkedSender", "transport": "tcp", "idle": False,
        "does": "sends its payload to each client in one send() (or --chunking), then closes",
        "options": [_PAYLOAD,
                    {"flag": "--chunking", "param": "chunking", "kind": "choice", "choices": ["whole", "one-byte", "random"], "help": "how the payload is cut into send() calls"},
                    _SEED, _MAX_CHUNK, _CLOSE_AFTER, _KEEP_OPEN],
    },
    "stream-close-mid-message": {
        "module": "course.stream_peers", "class": "MidMessageCloser", "transport": "tcp", "idle": False,
        "does": "sends each client the first half of a length-prefixed message (4-byte header), then closes",
        "options": [{"flag": "--message", "param": "message", "kind": "bytes", "help": "the message whose first half is sent"}],
    },
    "stream-coalesce": {
        "module": "course.stream_peers", "class": "CoalescingSender", "transport": "tcp", "idle": False,
        "does": "sends each client 20 length-prefixed messages (4-byte header) in one single write, then closes",
        "options": [{"flag": "--messages", "param": "messages", "kind": "bytes-list", "help": "the messages to send instead"}],
    },
    "stream-framed-echo": {
        "module": "course.stream_peers", "class": "MessageCollector", "transport": "tcp", "idle": True,
        "does": "reads length-prefixed messages (4-byte big-endian header) and sends each one back framed",
        "options": [{"flag": "--no-echo", "param": "echo", "kind": "switch", "value": False, "help": "collect the messages without sending them back"}],
    },
    "stream-never-reads": {
        "module": "course.stream_peers", "class": "NeverReader", "transport": "tcp", "idle": False,
        "does": "accepts connections and never reads, so a sender's buffers fill up and its send() blocks",
        "options": [{"flag": "--rcvbuf", "param": "rcvbuf", "kind": "int", "help": "SO_RCVBUF of its connections, in bytes"}],
    },
    "stream-one-byte": {
        "module": "course.stream_peers", "class": "OneByteSender", "transport": "tcp", "idle": False,
        "does": "sends its payload to each client one byte per send(), each once the previous one was acknowledged, then closes",
        "options": [_PAYLOAD, _CLOSE_AFTER, _KEEP_OPEN],
    },
    "stream-random-chunks": {
        "module": "course.stream_peers", "class": "RandomChunkSender", "transport": "tcp", "idle": False,
        "does": "sends its payload to each client in seeded random chunks of 1 to 7 bytes, one send() each, then closes",
        "options": [_PAYLOAD, _SEED, _MAX_CHUNK, _CLOSE_AFTER, _KEEP_OPEN],
    },
    "stream-slow-reader": {
        "module": "course.stream_peers", "class": "SlowReader", "transport": "tcp", "idle": True,
        "does": "reads --chunk bytes per recv() (1024), pausing --pause s (0.01) between reads, with a small receive buffer",
        "options": [
            {"flag": "--chunk", "param": "chunk", "kind": "int", "help": "bytes per recv() (default 1024)"},
            {"flag": "--pause", "param": "pause", "kind": "float", "help": "seconds between two reads (default 0.01)"},
            {"flag": "--rcvbuf", "param": "rcvbuf", "kind": "int", "help": "SO_RCVBUF in bytes (default 4096)"},
        ],
    },
    "tcp-chat": {
        "module": "course.tcp", "class": "TcpChatServer", "transport": "tcp", "idle": True,
        "does": "seed 004's chat, line-framed: answers each line with a line, 'got: <line>' or the next of --script (exit closes)",
        "options": [{"flag": "--script", "param": "script", "kind": "texts", "help": "the operator's answers in order; exit closes the chat"}],
    },
    "tcp-chat-seed004": {
        "module": "course.seed_peers", "class": "SeedChatServer", "transport": "tcp", "idle": True,
        "does": "seed 004's own chat server, unframed: answers each read with no newline: 'got: <text>', --script/--reply, or what you type (--operator); exit closes",
        "options": [
            {"flag": "--script", "param": "script", "kind": "texts", "help": "the operator's answers in order; exit closes the chat"},
            {"flag": "--reply", "param": "reply", "kind": "choice", "choices": ["got", "echo", "upper"], "convert": True, "help": "the answer after the script (default got)"},
            {"flag": "--operator", "param": "operator", "kind": "switch", "help": "you answer: each message is shown, and the line you type is sent (after the script; Ctrl-D is exit)"},
        ],
    },
    "tcp-echo": {
        "module": "course.tcp", "class": "TcpEchoServer", "transport": "tcp", "idle": True,
        "does": "sends back every byte it receives, on each connection, until the client closes",
        "options": [],
    },
    "tcp-lines": {
        "module": "course.sockets", "class": "LineSender", "transport": "tcp", "idle": False,
        "does": "sends each client known UTF-8 lines in odd chunks, each once the previous one was read, then closes",
        "options": [{"flag": "--payload", "param": "payload", "kind": "bytes", "help": "the bytes to send (escapes such as \\n allowed)"},
                    {"flag": "--chunks", "param": "chunks", "kind": "ints", "help": "chunk sizes, repeated (default 1 2 3 5 8)"}],
    },
    "tcp-reply-close": {
        "module": "course.tcp", "class": "ReplyThenCloseServer", "transport": "tcp", "idle": True,
        "does": "reads one request line, answers it in several writes (each once the previous was read), then closes",
        "options": [{"flag": "--parts", "param": "parts", "kind": "bytes-list", "help": "the reply, one write each (default: quotes the request)"}],
    },
    "tcp-silent": {
        "module": "course.tcp", "class": "SilentServer", "transport": "tcp", "idle": True,
        "does": "accepts every connection, reads what the client sends and never answers (what a client's timeout is for)",
        "options": [],
    },
    "tcp-sum": {
        "module": "course.tcp", "class": "TcpSumServer", "transport": "tcp", "idle": True,
        "does": 'seed 002\'s sum, line-framed: {"A":7,"B":4} and a newline -> {"Sum":11} and a newline, many per connection',
        "options": [],
    },
    "tcp-sum-seed002": {
        "module": "course.seed_peers", "class": "SeedTcpSumServer", "transport": "tcp", "idle": False,
        "does": 'seed 002\'s own sum server, unframed: each read -> {"Sum":N} with no newline; closes each connection 30 s after accepting it',
        "options": [_SEED_DEADLINE],
    },
    "udp-chat": {
        "module": "course.udp", "class": "UdpChatPeer", "transport": "udp", "idle": False,
        "does": "seed 001's UDP chat: hears each datagram and answers it with --reply (none by default: it only listens)",
        "options": [{"flag": "--reply", "param": "reply", "kind": "choice", "choices": ["none", "echo", "upper", "got"], "convert": True, "help": "what it answers to each line (default none)"}],
    },
    "udp-echo": {
        "module": "course.udp", "class": "UdpEchoServer", "transport": "udp", "idle": False,
        "does": "sends every datagram back to the address it came from",
        "options": [],
    },
    "udp-lossy": {
        "module": "course.udp", "class": "LossyUdpServer", "transport": "udp", "idle": False,
        "does": "answers the sum protocol (or --answer echo) but drops chosen datagrams: every 3rd by default",
        "options": [
            {"flag": "--drop", "param": "drop", "kind": "indices", "help": "numbers of the datagrams to drop (0 = the first), or all"},
            {"flag": "--every", "param": "every", "kind": "int", "help": "drop every Nth datagram"},
            {"flag": "--fraction", "param": "fraction", "kind": "float", "help": "drop this seeded random fraction"},
            {"flag": "--seed", "param": "seed", "kind": "int", "help": "seed of --fraction"},
            {"flag": "--answer", "param": "answer", "kind": "choice", "choices": ["sum", "echo"], "help": "what it answers (default sum)"},
            {"flag": "--stray", "param": "stray", "kind": "switch", "help": "send a stray reply before each real one"},
        ],
    },
    "udp-sum": {
        "module": "course.udp", "class": "UdpSumServer", "transport": "udp", "idle": False,
        "does": 'seed 002\'s sum over UDP: {"A":7,"B":4} -> {"Sum":11}, the request\'s "id" copied, {"Error":...} when malformed',
        "options": [],
    },
    "udp-sum-seed002": {
        "module": "course.seed_peers", "class": "SeedUdpSumServer", "transport": "udp", "idle": False,
        "does": 'seed 002\'s own UDP sum server: {"A":7,"B":4} -> {"Sum":11}, no id, no errors; stops 30 s after it started',
        "options": [_SEED_DEADLINE],
    },
    "udp-whoami": {
        "module": "course.nat", "class": "WhoAmIServer", "transport": "udp", "idle": False,
        "does": "answers each datagram with it and the address it came from: hi | you are 127.0.0.1:40213",
        "options": [],
    },
}
