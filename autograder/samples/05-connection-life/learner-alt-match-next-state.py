# what: (written by a learner helper who saw only the released notebook) a match statement over the (state, event) pair, with or-patterns for the RST arrows and a guarded wildcard that tells an unknown name from an impossible event (both ValueError).
# cell: tcp_state_machine
# fails: none
_STATES = {"CLOSE", "LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2",
           "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"}
_EVENTS = {"passive_open", "active_open/send SYN", "recv SYN", "recv SYN+ACK", "recv ACK of SYN",
           "close/send FIN", "recv FIN", "recv ACK of FIN", "recv FIN+ACK", "timeout 2MSL", "recv RST"}


def next_state(state, event):
    """The TCP state after `event` in `state`; raise ValueError if `event` cannot happen there."""
    match (state, event):
        # opening
        case ("CLOSE", "passive_open"):
            return "LISTEN"
        case ("CLOSE", "active_open/send SYN"):
            return "SYN_SENT"
        case ("LISTEN", "recv SYN"):
            return "SYN_RECV"
        case ("LISTEN", "close/send FIN"):
            return "CLOSE"
        case ("SYN_SENT", "recv SYN+ACK"):
            return "ESTABLISHED"
        case ("SYN_SENT", "recv SYN"):
            return "SYN_RECV"                      # simultaneous open
        case ("SYN_SENT", "close/send FIN"):
            return "CLOSE"
        case ("SYN_RECV", "recv ACK of SYN"):
            return "ESTABLISHED"
        # closing
        case ("SYN_RECV" | "ESTABLISHED", "close/send FIN"):
            return "FIN_WAIT1"
        case ("SYN_RECV" | "ESTABLISHED", "recv FIN"):
            return "CLOSE_WAIT"                    # RFC 9293 3.10.7.4: SYN-RECEIVED too
        case ("FIN_WAIT1", "recv ACK of FIN"):
            return "FIN_WAIT2"
        case ("FIN_WAIT1", "recv FIN"):
            return "CLOSING"
        case ("FIN_WAIT1", "recv FIN+ACK") | ("FIN_WAIT2", "recv FIN") | ("CLOSING", "recv ACK of FIN"):
            return "TIME_WAIT"
        case ("CLOSE_WAIT", "close/send FIN"):
            return "LAST_ACK"
        case ("LAST_ACK", "recv ACK of FIN") | ("TIME_WAIT", "timeout 2MSL"):
            return "CLOSE"
        case ("CLOSE_WAIT" | "CLOSING" | "LAST_ACK" | "TIME_WAIT" as same, "recv FIN"):
            return same                            # a retransmitted FIN: remain (RFC 9293 3.10.7.4)
        # resets
        case ("SYN_RECV", "recv RST"):
            return "LISTEN"
        case ("SYN_SENT" | "ESTABLISHED" | "FIN_WAIT1" | "FIN_WAIT2" | "CLOSE_WAIT" | "CLOSING"
              | "LAST_ACK" | "TIME_WAIT", "recv RST"):
            return "CLOSE"
        case (s, e) if s not in _STATES or e not in _EVENTS:
            raise ValueError(f"unknown state or event: {state!r}, {event!r}")
        case _:
            raise ValueError(f"{event!r} cannot happen in {state}")
