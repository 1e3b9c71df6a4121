# what: (written by a learner helper who saw only the released notebook) keeps one Flow dataclass per (protocol, private) pair, with its public port and a set of remotes, plus a per-protocol reverse index from public port to flow.
# cell: nat-table
# fails: none
from dataclasses import dataclass, field


@dataclass
class Flow:
    private: tuple
    public_port: int
    remotes: set = field(default_factory=set)


class NatTable:
    """A NAT's translation table: private (ip, port) <-> public port, per protocol."""

    def __init__(self, public_ip, public_ports):
        self.public_ip = public_ip
        self.public_ports = list(public_ports)
        self._flows = {}      # (protocol, private) -> Flow
        self._by_port = {}    # (protocol, public_port) -> Flow

    def outbound(self, protocol, private, remote):
        """(public_ip, public_port) for a datagram from private to remote; RuntimeError if full."""
        private, remote = tuple(private), tuple(remote)
        flow = self._flows.get((protocol, private))
        if flow is None:
            port = next((p for p in self.public_ports if (protocol, p) not in self._by_port), None)
            if port is None:
                raise RuntimeError(f"no free {protocol} public port left for {private}")
            flow = Flow(private, port)
            self._flows[(protocol, private)] = flow
            self._by_port[(protocol, port)] = flow
        flow.remotes.add(remote)
        return (self.public_ip, flow.public_port)

    def inbound(self, protocol, public_port, remote):
        """The private (ip, port) a datagram from remote to public_port goes to, or None to drop it."""
        flow = self._by_port.get((protocol, public_port))
        if flow is None or tuple(remote) not in flow.remotes:
            return None
        return flow.private
