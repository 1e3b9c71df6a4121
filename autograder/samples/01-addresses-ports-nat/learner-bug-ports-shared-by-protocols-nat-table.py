# what: (written by a learner helper who saw only the released notebook) keeps one dict of used public ports for all protocols, so a UDP flow cannot get a port a TCP flow already holds.
# cell: nat-table
# fails: nat-rules
# (the rule it breaks, in the exercise's words: Ports are per protocol: TCP port 6539 and UDP port 6539 are different, so a TCP flow may get 6539 while a UDP flow holds it.)
class NatTable:
    """A NAT's translation table: private (ip, port) <-> public port, per protocol."""

    def __init__(self, public_ip, public_ports):
        self.public_ip = public_ip
        self.public_ports = list(public_ports)
        self.flows = {}     # (protocol, private) -> public port
        self.used = {}      # public port -> (protocol, private)
        self.remotes = {}   # (protocol, private) -> set of remotes

    def outbound(self, protocol, private, remote):
        """(public_ip, public_port) for a datagram from private to remote; RuntimeError if full."""
        key = (protocol, tuple(private))
        if key not in self.flows:
            free = [p for p in self.public_ports if p not in self.used]
            if not free:
                raise RuntimeError("NAT table full")
            self.flows[key] = free[0]
            self.used[free[0]] = key
            self.remotes[key] = set()
        self.remotes[key].add(tuple(remote))
        return (self.public_ip, self.flows[key])

    def inbound(self, protocol, public_port, remote):
        """The private (ip, port) a datagram from remote to public_port goes to, or None to drop it."""
        key = self.used.get(public_port)
        if key is None or key[0] != protocol or tuple(remote) not in self.remotes[key]:
            return None
        return key[1]
