# what: (written by a learner helper who saw only the released notebook) maps replies back by (protocol, public port) alone and never looks at who sends, a full-cone NAT that lets strangers in.
# cell: nat-table
# fails: nat-rules nat-same-as-reference nat-real-traffic
# (the rule it breaks, in the exercise's words: if that flow never sent to `remote`.)
class NatTable:
    """A NAT's translation table: private (ip, port) <-> public port, per protocol."""

    def __init__(self, public_ip, public_ports):
        self.public_ip = public_ip
        self.public_ports = list(public_ports)
        self.out = {}   # (protocol, private) -> public port
        self.back = {}  # (protocol, public port) -> private
        self.seen = {}  # (protocol, private) -> remotes it sent to (kept, never used)

    def outbound(self, protocol, private, remote):
        """(public_ip, public_port) for a datagram from private to remote; RuntimeError if full."""
        key = (protocol, tuple(private))
        if key not in self.out:
            for port in self.public_ports:
                if (protocol, port) not in self.back:
                    self.out[key] = port
                    self.back[(protocol, port)] = tuple(private)
                    break
            else:
                raise RuntimeError("no free public port")
        self.seen.setdefault(key, set()).add(tuple(remote))
        return (self.public_ip, self.out[key])

    def inbound(self, protocol, public_port, remote):
        """The private (ip, port) a datagram from remote to public_port goes to, or None to drop it."""
        return self.back.get((protocol, public_port))
