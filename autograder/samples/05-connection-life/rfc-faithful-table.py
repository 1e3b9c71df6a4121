# what: the state machine written state by state, following RFC 9293's diagram and its FIN processing (a resent FIN keeps CLOSE_WAIT, CLOSING, LAST_ACK and TIME_WAIT; a FIN in SYN_RECV gives CLOSE_WAIT)
# cell: tcp_state_machine
# fails: none
SYNCHRONIZED = ("ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT")

MACHINE = {
    "CLOSE": {"passive_open": "LISTEN", "active_open/send SYN": "SYN_SENT"},
    "LISTEN": {"recv SYN": "SYN_RECV", "close/send FIN": "CLOSE"},
    "SYN_SENT": {"recv SYN+ACK": "ESTABLISHED", "recv SYN": "SYN_RECV", "close/send FIN": "CLOSE", "recv RST": "CLOSE"},
    "SYN_RECV": {"recv ACK of SYN": "ESTABLISHED", "close/send FIN": "FIN_WAIT1", "recv RST": "LISTEN",
                 "recv FIN": "CLOSE_WAIT"},
    "ESTABLISHED": {"close/send FIN": "FIN_WAIT1", "recv FIN": "CLOSE_WAIT"},
    "FIN_WAIT1": {"recv ACK of FIN": "FIN_WAIT2", "recv FIN": "CLOSING", "recv FIN+ACK": "TIME_WAIT"},
    "FIN_WAIT2": {"recv FIN": "TIME_WAIT"},
    "CLOSE_WAIT": {"close/send FIN": "LAST_ACK", "recv FIN": "CLOSE_WAIT"},
    "CLOSING": {"recv ACK of FIN": "TIME_WAIT", "recv FIN": "CLOSING"},
    "LAST_ACK": {"recv ACK of FIN": "CLOSE", "recv FIN": "LAST_ACK"},
    "TIME_WAIT": {"timeout 2MSL": "CLOSE", "recv FIN": "TIME_WAIT"},  # the FIN: ACK it again, restart 2MSL
}
for _state in SYNCHRONIZED:
    MACHINE[_state]["recv RST"] = "CLOSE"


def next_state(state, event):
    """The TCP state after `event` in `state`; raise ValueError for an event the table does not list there."""
    if state not in MACHINE:
        raise ValueError(f"{state!r} is not a state")
    try:
        return MACHINE[state][event]
    except KeyError:
        raise ValueError(f"{event!r} is not listed for {state}") from None
