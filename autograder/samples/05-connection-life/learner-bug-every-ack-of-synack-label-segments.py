# what: (written by a learner helper who saw only the released notebook) labels by the rules in order, but gives 'handshake 3: ACK' to every pure ACK that acknowledges the SYN-ACK, instead of only to the first segment (of any kind) that acknowledges it.
# cell: label_segments
# fails: label_fresh_and_odd_captures
# (the rule it breaks, in the exercise's words: 5. otherwise a pure ACK: `'handshake 3: ACK'` if it is the first segment of any kind that acknowledges the SYN-ACK (sent by the side that did not send the SYN-ACK, with `ack == synack.seq + 1`); when that first segment carries data (seed 002's third segment) it is `'data'`, and no later segment is `'handshake 3: ACK'`; `'teardown 2: ACK'` if it acknowledges the first FIN, `'teardown 4: ACK'` if it acknowledges the second (sent by the side that did not send that FIN, with `ack == fin.seq + fin.length + 1`); anything else is `'ACK'`.)
def label_segments(segments):
    """One label from capture.LABELS for each segment of one connection, by the rules above."""
    mod = 2**32
    synack = None
    fins = []
    labels = []

    def acknowledges(seg, other, extra):
        return seg.sender != other.sender and seg.ack == (other.seq + extra) % mod

    for seg in segments:
        if seg.has("RST"):
            labels.append("RST")
        elif seg.has("SYN"):
            if seg.has("ACK"):
                labels.append("handshake 2: SYN-ACK")
                if synack is None:
                    synack = seg
            else:
                labels.append("handshake 1: SYN")
        elif seg.has("FIN"):
            labels.append("teardown 1: FIN" if not fins else "teardown 3: FIN")
            fins.append(seg)
        elif seg.length > 0:
            labels.append("data")
        elif synack is not None and acknowledges(seg, synack, 1):
            labels.append("handshake 3: ACK")
        elif fins and acknowledges(seg, fins[0], fins[0].length + 1):
            labels.append("teardown 2: ACK")
        elif len(fins) > 1 and acknowledges(seg, fins[1], fins[1].length + 1):
            labels.append("teardown 4: ACK")
        else:
            labels.append("ACK")
    return labels
