# what: number_segments with a dict of counters per side and the flags tested with a set, appending as it goes
# cell: number_segments
# fails: none
def number_segments(conversation, client_isn, server_isn):
    """(seq, ack) of every segment of `conversation`, a list of (sender, flags, length) tuples."""
    sent = {"client": client_isn % 2**32, "server": server_isn % 2**32}  # next number each side sends
    peer = {"client": "server", "server": "client"}
    out = []
    for sender, flags, length in conversation:
        if sender not in peer:
            raise ValueError(sender)
        flag_set = set(flags.split(","))
        seq = sent[sender]
        out.append((seq, sent[peer[sender]] if "ACK" in flag_set else 0))
        sent[sender] = (seq + length + len(flag_set & {"SYN", "FIN"})) % 2**32
    return out
