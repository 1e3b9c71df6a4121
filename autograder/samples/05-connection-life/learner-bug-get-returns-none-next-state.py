# what: (written by a learner helper who saw only the released notebook) an explicit transition table read with dict.get, so an impossible event or an unknown name returns None instead of raising ValueError.
# cell: tcp_state_machine
# fails: state_machine_hidden
# (the rule it breaks, in the exercise's words: An event this table does not list for that state (say `'recv SYN+ACK'` in ESTABLISHED), or a name that is not a state or an event, must raise `ValueError`.)
TABLE = {
    "CLOSE": {"passive_open": "LISTEN", "active_open/send SYN": "SYN_SENT"},
    "LISTEN": {"recv SYN": "SYN_RECV", "close/send FIN": "CLOSE"},
    "SYN_SENT": {"recv SYN+ACK": "ESTABLISHED", "recv SYN": "SYN_RECV", "close/send FIN": "CLOSE", "recv RST": "CLOSE"},
    "SYN_RECV": {"recv ACK of SYN": "ESTABLISHED", "close/send FIN": "FIN_WAIT1", "recv FIN": "CLOSE_WAIT", "recv RST": "LISTEN"},
    "ESTABLISHED": {"close/send FIN": "FIN_WAIT1", "recv FIN": "CLOSE_WAIT", "recv RST": "CLOSE"},
    "FIN_WAIT1": {"recv ACK of FIN": "FIN_WAIT2", "recv FIN": "CLOSING", "recv FIN+ACK": "TIME_WAIT", "recv RST": "CLOSE"},
    "FIN_WAIT2": {"recv FIN": "TIME_WAIT", "recv RST": "CLOSE"},
    "CLOSE_WAIT": {"close/send FIN": "LAST_ACK", "recv FIN": "CLOSE_WAIT", "recv RST": "CLOSE"},
    "CLOSING": {"recv ACK of FIN": "TIME_WAIT", "recv FIN": "CLOSING", "recv RST": "CLOSE"},
    "LAST_ACK": {"recv ACK of FIN": "CLOSE", "recv FIN": "LAST_ACK", "recv RST": "CLOSE"},
    "TIME_WAIT": {"timeout 2MSL": "CLOSE", "recv FIN": "TIME_WAIT", "recv RST": "CLOSE"},
}


def next_state(state, event):
    """The TCP state after `event` in `state`; raise ValueError if `event` cannot happen there."""
    return TABLE.get(state, {}).get(event)
