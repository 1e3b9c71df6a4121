# what: label_segments in two passes: first find the SYN-ACK and the FINs, then give every segment its label
# cell: label_segments
# fails: none
def label_segments(segments):
    """One label from capture.LABELS for each segment of one connection, by the rules above."""
    M = 2**32
    synack = next((s for s in segments if s.has("SYN") and s.has("ACK") and not s.has("RST")), None)
    fins = [s for s in segments if s.has("FIN") and not s.has("RST") and not s.has("SYN")]
    third = None
    if synack is not None:
        after = segments[segments.index(synack) + 1:]
        third = next((s for s in after if s.sender != synack.sender and s.has("ACK") and s.ack == (synack.seq + 1) % M), None)
    out = []
    for s in segments:
        if s.has("RST"):
            out.append("RST")
        elif s.has("SYN"):
            out.append("handshake 2: SYN-ACK" if s.has("ACK") else "handshake 1: SYN")
        elif s.has("FIN"):
            out.append("teardown 1: FIN" if s is fins[0] else "teardown 3: FIN")
        elif s.length:
            out.append("data")
        else:
            label = "handshake 3: ACK" if s is third else "ACK"
            seen = fins[:2]
            before = segments[:segments.index(s)]
            for name, fin in zip(("teardown 2: ACK", "teardown 4: ACK"), seen):
                if any(f is fin for f in before) and s.sender != fin.sender and s.ack == (fin.seq + fin.length + 1) % M:
                    label = name
            out.append(label)
    return out
