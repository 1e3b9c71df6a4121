"""What a lab link or router does to packets, written as nftables and tc text (no namespaces here).

This kernel has no netem qdisc (and a stock one may lack it too), so loss is an nftables rule:

- a chosen packet: `numgen inc` counts the packets that reach the rule, and the rule drops the one
  whose count is N-1 (the N-th), once: a transfer loses exactly that packet, whatever the timing;
  or, `onward`, that one and every one after it (count >= N-1: retransmissions too);
- a probability: `numgen random mod 1000000 < p * 1000000` drops each packet with probability p.

Where: a link's loss toward host B is a rule in B's `prerouting` hook at priority -500, matching
B's end of the link (`iifname`): before conntrack and reassembly, so a fragment counts as a packet,
and only IPv4 (ARP is never lost). The sender's capture shows the packet leave; B drops it as it
comes in, so B's own capture still sees it (a packet socket's tap runs before netfilter, as on
any Linux machine), and nothing after B ever sees it. For a router in the middle that is a silent
loss on the path: the sender learns of it only from missing acknowledgements, as on the Internet.
(A rule in a host's own output chain would not be silent: sendto() would fail with EPERM.)

Which packets count (`of`):
- "ip": every IPv4 packet (and fragment);
- "tcp", "udp": every packet of that protocol;
- "tcp-data": TCP segments that carry payload and are not SYN or RST: for each data offset D
  (5..15 words) the IP total length exceeds 20 + 4 * D. nftables cannot compare two fields, so
  there is one rule per D, all jumping to one chain whose single `numgen` counts them together.
  Packets with IP options never count as data (no lab host sends any).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KINDS", "CHAINS", "Loss", "parse_rate", "loss_chain_name", "loss_rules", "nat_rules", "filter_rules", "tbf_command"]

KINDS = ("ip", "tcp", "udp", "tcp-data")
CHAINS = ("input", "forward", "output")  # a host's filter chains (Host.filter): for it, through it, from it
NUMGEN_MODULUS = 4294967295  # numgen's counter wraps at 2**32 - 1: only the first wrap-around matters
PROBABILITY_SCALE = 1_000_000


@dataclass(frozen=True)
class Loss:
    """Packets a link loses in one direction: the `nth` packet of a kind (once), the nth and every
    one after it (`onward`), or each packet of that kind with `probability`.

        Loss.packet(3, of="tcp-data")       # the 3rd TCP segment with payload, and no other
        Loss.packets_from(3, of="tcp-data") # the 3rd and every one after it, retransmissions included
        Loss.random(0.05, of="udp")         # 5 % of UDP datagrams (or fragments), at random
    """

    nth: int | None = None
    probability: float | None = None
    of: str = "ip"
    onward: bool = False

    def __post_init__(self):
        if self.of not in KINDS:
            raise ValueError(f"a loss counts one of {', '.join(KINDS)}, not {self.of!r}")
        if (self.nth is None) == (self.probability is None):
            raise ValueError("a loss has either nth (a chosen packet) or probability, not both or neither")
        if self.onward and self.nth is None:
            raise ValueError("onward counts from a chosen packet (nth), not with a probability")
        if self.nth is not None and (not isinstance(self.nth, int) or self.nth < 1):
            raise ValueError(f"nth counts from 1 (the first packet), got {self.nth!r}")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"a probability is between 0 and 1, got {self.probability!r}")

    @classmethod
    def packet(cls, nth: int, of: str = "tcp-data") -> "Loss":
        return cls(nth=nth, of=of)

    @classmethod
    def packets_from(cls, nth: int, of: str = "tcp-data") -> "Loss":
        return cls(nth=nth, of=of, onward=True)

    @classmethod
    def random(cls, probability: float, of: str = "ip") -> "Loss":
        return cls(probability=probability, of=of)

    def __str__(self) -> str:
        what = {"ip": "IPv4 packet", "tcp": "TCP segment", "udp": "UDP packet", "tcp-data": "TCP segment with data"}[self.of]
        if self.nth is not None:
            suffix = {1: "st", 2: "nd", 3: "rd"}.get(self.nth if self.nth % 100 not in (11, 12, 13) else 0, "th")
            return f"the {self.nth}{suffix} {what}" + (" and every one after it" if self.onward else "")
        return f"each {what} with probability {self.probability:g}"

    def verdict(self) -> str | None:
        """The statement that drops, in the link's own chain (and counts what it dropped); None
        when nothing is ever dropped (probability 0)."""
        if self.nth is not None:
            return f"numgen inc mod {NUMGEN_MODULUS} {'>=' if self.onward else '=='} {self.nth - 1} counter drop"
        threshold = round(self.probability * PROBABILITY_SCALE)
        if threshold <= 0:
            return None
        if threshold >= PROBABILITY_SCALE:
            return "counter drop"
        return f"numgen random mod {PROBABILITY_SCALE} < {threshold} counter drop"

    def matches(self) -> list[str]:
        """The match expressions that send a packet of this kind to the link's chain."""
        if self.of == "ip":
            return ["meta nfproto ipv4"]
        if self.of in ("tcp", "udp"):
            return [f"meta nfproto ipv4 meta l4proto {self.of}"]
        return [f"ip hdrlength 5 meta l4proto tcp tcp flags & (syn | rst) == 0 tcp doff {d} ip length > {20 + 4 * d}"
                for d in range(5, 16)]


def loss_chain_name(iface: str) -> str:
    return "loss_" + re.sub(r"[^A-Za-z0-9_]", "_", iface)


def _quoted(iface: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", iface):
        raise ValueError(f"{iface!r} is not an interface name")
    return f'"{iface}"'


def loss_rules(iface: str, loss: Loss | None, first: bool = False) -> str:
    """An `nft -f` script that sets (or, with None, clears) the loss on packets coming in on
    `iface`. Three chains per link end: the hook chain `prerouting` sends what comes in on `iface`
    to `loss_IFACE_in` (one rule, added the `first` time), whose match rules jump to `loss_IFACE`,
    whose one verdict drops. Both link chains are emptied and refilled, so the numgen counter of
    a new loss starts again from 0."""
    chain = loss_chain_name(iface)
    jumps = chain + "_in"
    lines = [
        "table inet lab {",
        "  chain prerouting { type filter hook prerouting priority -500; policy accept; }",
        f"  chain {jumps} {{ }}",
        f"  chain {chain} {{ }}",
        "}",
        f"flush chain inet lab {jumps}",
        f"flush chain inet lab {chain}",
    ]
    if first:
        lines.append(f"add rule inet lab prerouting iifname {_quoted(iface)} jump {jumps}")
    if loss is not None and loss.verdict() is not None:
        lines.append(f"add rule inet lab {chain} {loss.verdict()}")
        lines += [f"add rule inet lab {jumps} {match} jump {chain}" for match in loss.matches()]
    return "\n".join(lines) + "\n"


def nat_rules(out_iface: str) -> str:
    """Masquerade: what leaves through `out_iface` takes that interface's address (and, where the
    port is taken, another port); conntrack remembers each translation and undoes it on replies."""
    return (
        "table ip labnat {\n"
        "  chain postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
        "}\n"
        f"add rule ip labnat postrouting oifname {_quoted(out_iface)} masquerade\n"
    )


def filter_rules(chain: str, match: str, drop: bool = False, first: bool = False) -> str:
    """An `nft -f` script that adds a rule to a host's `chain` (one of CHAINS, in table inet lab,
    made the `first` time): packets that match the nftables expression `match` (e.g. 'udp dport 53',
    'iifname "wan0" ct state new') are counted, and dropped if `drop` (silently: no ICMP error)."""
    if chain not in CHAINS:
        raise ValueError(f"a host's filter chain is one of {', '.join(CHAINS)}, not {chain!r}")
    head = f"table inet lab {{\n  chain {chain} {{ type filter hook {chain} priority 0; policy accept; }}\n}}\n" if first else ""
    return head + f"add rule inet lab {chain} {match} counter{' drop' if drop else ''}\n"


_RATE = re.compile(r"^(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit)$", re.IGNORECASE)
_UNITS = {"bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}


def parse_rate(rate: int | float | str) -> int:
    """A rate in bits per second, from a number or from tc's spelling ('10mbit', '512kbit')."""
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        value = int(rate)
    else:
        m = _RATE.match(str(rate).strip())
        if not m:
            raise ValueError(f"a rate is bits per second (an int) or like '10mbit', '512kbit', not {rate!r}")
        value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 8000:
        raise ValueError(f"a rate below 8000 bit/s is not useful here, got {value}")
    return value


def tbf_command(iface: str, rate_bps: int | None, mtu: int) -> list[str]:
    """tc's token bucket on `iface`'s egress: at most `rate_bps` leave; the bucket holds at least two
    full frames (and 10 ms at that rate), and up to 100 ms of packets wait before the qdisc drops."""
    if rate_bps is None:
        return ["tc", "qdisc", "del", "dev", iface, "root"]
    burst = max(2 * (mtu + 14), rate_bps // 8 // 100)
    return ["tc", "qdisc", "replace", "dev", iface, "root", "tbf", "rate", f"{rate_bps}bit", "burst", str(burst), "latency", "100ms"]
