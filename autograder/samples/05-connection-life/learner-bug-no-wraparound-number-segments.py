# what: (written by a learner helper who saw only the released notebook) counts seq and ack with plain integer additions in two dicts and never reduces them modulo 2**32, so numbers near the top of the range run past 2**32 - 1.
# cell: number_segments
# fails: number_segments_hidden
# (the rule it breaks, in the exercise's words: Numbers are 32 bits and wrap around (`% 2**32`).)
def number_segments(conversation, client_isn, server_isn):
    """(seq, ack) of every segment of `conversation`, a list of (sender, flags, length) tuples.

    sender: 'client' or 'server' (anything else: raise ValueError); flags: a string such as
    'SYN', 'SYN,ACK', 'PSH,ACK', 'FIN,ACK'; length: payload bytes. SYN and FIN take one
    sequence number each; ack is 0 in a segment without the ACK flag; wrap with % 2**32.
    """
    next_seq = {"client": client_isn, "server": server_isn}
    expected = {"client": server_isn, "server": client_isn}
    result = []
    for sender, flags, length in conversation:
        if sender not in next_seq:
            raise ValueError(f"bad sender {sender}")
        other = "server" if sender == "client" else "client"
        parts = flags.split(",")
        seq = next_seq[sender]
        ack = expected[sender] if "ACK" in parts else 0
        result.append((seq, ack))
        used = length
        if "SYN" in parts:
            used += 1
        if "FIN" in parts:
            used += 1
        next_seq[sender] = seq + used
        expected[other] = seq + used
    return result
