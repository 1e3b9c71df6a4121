# what: (written by a learner helper who saw only the released notebook) an explicit transition table (dict of dicts) in which the learner sends "recv RST" to CLOSE from every state after LISTEN, SYN_RECV included.
# cell: tcp_state_machine
# fails: state_machine_hidden
# (the rule it breaks, in the exercise's words: Follow RFC 9293's diagram (above; RST arrows: "recv RST" in SYN_SENT gives CLOSE (connection refused), in SYN_RECV gives LISTEN, in every later state CLOSE) and its FIN processing (section 3.10.7.4): a FIN in SYN_RECV leads to CLOSE_WAIT, and a FIN that arrives again keeps CLOSE_WAIT, CLOSING, LAST_ACK and TIME_WAIT where they are (the peer resent it because our ACK was lost; answering it is what TIME_WAIT is for, section 7, and it restarts the 2MSL timer).)
TABLE = {
    "CLOSE": {"passive_open": "LISTEN", "active_open/send SYN": "SYN_SENT"},
    "LISTEN": {"recv SYN": "SYN_RECV", "close/send FIN": "CLOSE"},
    "SYN_SENT": {"recv SYN+ACK": "ESTABLISHED", "recv SYN": "SYN_RECV", "close/send FIN": "CLOSE"},
    "SYN_RECV": {"recv ACK of SYN": "ESTABLISHED", "close/send FIN": "FIN_WAIT1", "recv FIN": "CLOSE_WAIT"},
    "ESTABLISHED": {"close/send FIN": "FIN_WAIT1", "recv FIN": "CLOSE_WAIT"},
    "FIN_WAIT1": {"recv ACK of FIN": "FIN_WAIT2", "recv FIN": "CLOSING", "recv FIN+ACK": "TIME_WAIT"},
    "FIN_WAIT2": {"recv FIN": "TIME_WAIT"},
    "CLOSE_WAIT": {"close/send FIN": "LAST_ACK", "recv FIN": "CLOSE_WAIT"},
    "CLOSING": {"recv ACK of FIN": "TIME_WAIT", "recv FIN": "CLOSING"},
    "LAST_ACK": {"recv ACK of FIN": "CLOSE", "recv FIN": "LAST_ACK"},
    "TIME_WAIT": {"timeout 2MSL": "CLOSE", "recv FIN": "TIME_WAIT"},
}
for _state in TABLE:
    if _state not in ("CLOSE", "LISTEN"):
        TABLE[_state]["recv RST"] = "CLOSE"          # a reset always ends the connection


def next_state(state, event):
    """The TCP state after `event` in `state`; raise ValueError if `event` cannot happen there."""
    try:
        return TABLE[state][event]
    except KeyError:
        raise ValueError(f"{event!r} cannot happen in {state!r}") from None
