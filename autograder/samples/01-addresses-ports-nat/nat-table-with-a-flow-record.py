# what: NatTable with one record per flow (a dict) found from both sides, and the free ports computed by a set difference
# cell: nat-table
# fails: none
class NatTable:
    """A NAT's translation table: private (ip, port) <-> public port, per protocol."""

    def __init__(self, public_ip, public_ports):
        self.public_ip = public_ip
        self.public_ports = list(public_ports)
        self.flows = []  # one dict per flow: protocol, private, port, remotes

    def _find(self, **want):
        return next((f for f in self.flows if all(f[k] == v for k, v in want.items())), None)

    def outbound(self, protocol, private, remote):
        """(public_ip, public_port) for a datagram from private to remote; RuntimeError if full."""
        flow = self._find(protocol=protocol, private=tuple(private))
        if flow is None:
            used = {f["port"] for f in self.flows if f["protocol"] == protocol}
            free = [p for p in self.public_ports if p not in used]
            if not free:
                raise RuntimeError(f"all {len(self.public_ports)} public {protocol} ports are mapped; none for {private}")
            flow = {"protocol": protocol, "private": tuple(private), "port": free[0], "remotes": []}
            self.flows.append(flow)
        if tuple(remote) not in flow["remotes"]:
            flow["remotes"].append(tuple(remote))
        return (self.public_ip, flow["port"])

    def inbound(self, protocol, public_port, remote):
        """The private (ip, port) a datagram from remote to public_port goes to, or None to drop it."""
        flow = self._find(protocol=protocol, port=public_port)
        if flow is not None and tuple(remote) in flow["remotes"]:
            return flow["private"]
        return None
