# what: (written by a learner helper who saw only the released notebook) keeps one Side dataclass per end (next number to send, next number expected) and walks the conversation, advancing the sender's and the receiver's counters by payload plus one per SYN/FIN.
# cell: number_segments
# fails: none
from dataclasses import dataclass

_MOD = 2**32


@dataclass
class Side:
    snd_nxt: int          # the next sequence number this side will send
    rcv_nxt: int          # the next sequence number this side expects from the other

    def send(self, consumed):
        self.snd_nxt = (self.snd_nxt + consumed) % _MOD


def number_segments(conversation, client_isn, server_isn):
    """(seq, ack) of every segment of `conversation`, a list of (sender, flags, length) tuples.

    sender: 'client' or 'server' (anything else: raise ValueError); flags: a string such as
    'SYN', 'SYN,ACK', 'PSH,ACK', 'FIN,ACK'; length: payload bytes. SYN and FIN take one
    sequence number each; ack is 0 in a segment without the ACK flag; wrap with % 2**32.
    """
    sides = {
        "client": Side(client_isn % _MOD, server_isn % _MOD),
        "server": Side(server_isn % _MOD, client_isn % _MOD),
    }
    numbers = []
    for sender, flags, length in conversation:
        if sender not in sides:
            raise ValueError(f"unknown sender {sender!r}")
        me = sides[sender]
        peer = sides["server" if sender == "client" else "client"]
        names = {f.strip() for f in flags.split(",")}
        seq = me.snd_nxt
        ack = me.rcv_nxt if "ACK" in names else 0
        numbers.append((seq, ack))
        consumed = length + ("SYN" in names) + ("FIN" in names)
        me.send(consumed)
        peer.rcv_nxt = (seq + consumed) % _MOD
    return numbers
