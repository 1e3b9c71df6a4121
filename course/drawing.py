"""Pictures of a connection's life, drawn with matplotlib; every function returns a Figure.

- `sequence_diagram(segments)`: the time-sequence diagram of seed 000: two vertical lines (client,
  server), time flowing down, one slanted arrow per segment (a segment takes time to cross),
  labelled with its flags, seq, ack and length.
- `state_timeline(recorder)`: which TCP state each socket was in, over time, from a
  `course.kernel.StateRecorder`.
- `state_diagram()`: the state machine drawn from `course.tcpstates.TRANSITIONS` itself; the
  positions of the boxes are the only thing written here.

Figures are made with `matplotlib.figure.Figure` (no pyplot state, safe in threads and tests);
a notebook shows a returned figure as its cell's value.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from matplotlib.figure import Figure  # imported with the module: a notebook's first picture stays quick

__all__ = [
    "STATE_COLOURS",
    "segment_label",
    "sequence_diagram",
    "state_timeline",
    "LAYOUT",
    "END",
    "ENDING",
    "short_event",
    "state_diagram",
    "texts_of",
]

# Colours of the states in timelines and in the diagram: opening blue, open green, closing orange,
# waiting-out red, closed grey.
STATE_COLOURS = {
    "CLOSE": "#d9d9d9", "LISTEN": "#9ecae1", "SYN_SENT": "#6baed6", "SYN_RECV": "#6baed6",
    "NEW_SYN_RECV": "#6baed6", "ESTABLISHED": "#74c476", "FIN_WAIT1": "#fdae6b", "FIN_WAIT2": "#fd8d3c",
    "CLOSE_WAIT": "#fdd0a2", "CLOSING": "#fdae6b", "LAST_ACK": "#f16913", "TIME_WAIT": "#fb6a4a",
}  # fmt: skip


def _figure(width: float, height: float):
    _show_in_ipython(Figure)
    return Figure(figsize=(width, height), dpi=80)


def _show_in_ipython(figure_class) -> None:
    """Let IPython display a bare Figure as PNG (pyplot does this for its own figures only)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    from IPython.core.pylabtools import print_figure

    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(figure_class, lambda fig: print_figure(fig, "png"))  # laid out already


def segment_label(seg, index: int | None = None) -> str:
    """'SYN,ACK seq=0 ack=1 len=0' (and 'mss=65495' when the segment carries the option)."""
    head = f"{index}. " if index is not None else ""
    mss = f" mss={seg.mss}" if getattr(seg, "mss", None) else ""
    return f"{head}[{seg.flags}] seq={seg.seq} ack={seg.ack} len={seg.length}{mss}"


def sequence_diagram(segments: Sequence, title: str = "", labels: Sequence[str] | None = None):
    """Two vertical lines and one slanted arrow per segment (objects with sender, flags, seq, ack,
    length, e.g. course.capture.Segment); `labels` (e.g. from label_segments) go beside each arrow."""
    n = len(segments)
    fig = _figure(9, 1.2 + 0.55 * max(n, 1))
    ax = fig.add_subplot()
    xc, xs, drop = 0.0, 1.0, 0.6
    bottom = -(n + 1)
    ax.plot([xc, xc], [0.6, bottom], color="black", lw=1.5)
    ax.plot([xs, xs], [0.6, bottom], color="black", lw=1.5)
    ax.text(xc, 0.9, "client", ha="center", va="bottom", fontsize=11, weight="bold")
    ax.text(xs, 0.9, "server", ha="center", va="bottom", fontsize=11, weight="bold")
    for i, seg in enumerate(segments):
        y0 = -i
        x0, x1 = (xc, xs) if seg.sender == "client" else (xs, xc)
        colour = "#c0392b" if "RST" in seg.flags else ("#2471a3" if seg.sender == "client" else "#1e8449")
        ax.annotate("", xy=(x1, y0 - drop), xytext=(x0, y0), arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.4))
        ax.text(0.5, y0 - drop / 2 + 0.12, segment_label(seg, i + 1), ha="center", va="bottom", fontsize=8,
                rotation=0, color=colour, bbox=dict(facecolor="white", edgecolor="none", pad=0.5))
        if labels is not None and i < len(labels):
            ax.text(xs + 0.05, y0 - drop / 2, labels[i], ha="left", va="center", fontsize=8, color="#555555")
    ax.set_xlim(-0.25, 1.6 if labels is not None else 1.25)
    ax.set_ylim(bottom, 1.4)
    ax.axis("off")
    ax.text(-0.2, bottom + 0.3, "time", rotation=90, fontsize=9, color="#777777")
    ax.annotate("", xy=(-0.17, bottom + 0.1), xytext=(-0.17, 0.5), arrowprops=dict(arrowstyle="->", color="#777777"))
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def state_timeline(recorder_or_timeline, title: str = "TCP states the kernel showed"):
    """One row per socket, one coloured bar per state it was in; accepts a StateRecorder or its
    timeline() dict {label: [(start, end, state), ...]} (seconds)."""
    timeline = recorder_or_timeline.timeline() if hasattr(recorder_or_timeline, "timeline") else recorder_or_timeline
    labels = list(timeline)
    fig = _figure(10, 0.9 + 0.7 * max(len(labels), 1))
    ax = fig.add_subplot()
    begin = min((s for spans in timeline.values() for s, _, _ in spans), default=0.0)
    last = max((e for spans in timeline.values() for _, e, _ in spans), default=1.0)
    tail = max((last - begin) * 0.15, 1e-4)  # the state each socket ended in, drawn past the end
    end = last + tail
    for row, label in enumerate(labels):
        y = len(labels) - 1 - row
        spans = timeline[label]
        for i, (start, stop, state) in enumerate(spans):
            if i == len(spans) - 1:
                stop = end
            width = max(stop - start, (end - begin) * 0.002)
            ax.barh(y, width, left=start, height=0.6, color=STATE_COLOURS.get(state, "#cccccc"), edgecolor="white")
            ax.text(start + width / 2, y, state, ha="center", va="center", fontsize=7, clip_on=True)
    ax.set_yticks(range(len(labels)), labels=list(reversed(labels)), fontsize=9)
    ax.set_xlabel("seconds since the recorder started")
    ax.set_xlim(begin, end)
    ax.axvline(last, color="#999999", lw=0.8, ls=":")
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


# Where each state's box goes in the diagram (x, y); the arrows come from the table.
LAYOUT = {
    "CLOSE": (2.0, 9.0), "LISTEN": (2.0, 7.5), "SYN_RECV": (0.3, 6.0), "SYN_SENT": (3.7, 6.0),
    "ESTABLISHED": (2.0, 4.5), "FIN_WAIT1": (0.3, 3.0), "CLOSE_WAIT": (3.7, 3.0),
    "FIN_WAIT2": (0.3, 1.0), "CLOSING": (2.0, 1.8), "LAST_ACK": (3.7, 1.0), "TIME_WAIT": (2.0, 0.0),
}  # fmt: skip
END = (3.7, 0.0)  # a second CLOSE box at the bottom, where the closing states end (as in RFC 793)
ENDING = ("TIME_WAIT", "LAST_ACK", "CLOSING", "FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT", "ESTABLISHED")


def short_event(event: str) -> str:
    return event.replace("active_open/send SYN", "connect").replace("passive_open", "listen").replace("close/send FIN", "close").replace("timeout ", "")


def state_diagram(transitions: dict[tuple[str, str], str] | None = None, highlight: Iterable[str] = ()):
    """The TCP state diagram drawn from `transitions` (default: course.tcpstates.TRANSITIONS).
    RST arrows and arrows back to the same state (a resent FIN) are left out (every synchronized
    state goes to CLOSE on a RST); states in
    `highlight` get a thick border."""
    from course.tcpstates import TRANSITIONS

    transitions = TRANSITIONS if transitions is None else transitions
    highlight = set(highlight)
    fig = _figure(10, 9)
    ax = fig.add_subplot()
    pairs: dict[tuple[str, str], list[str]] = {}
    for (state, event), nxt in transitions.items():
        if event == "recv RST" or state == nxt:
            continue
        pairs.setdefault((state, nxt), []).append(short_event(event))
    for (a, b), events in pairs.items():
        (x0, y0), (x1, y1) = LAYOUT[a], (END if b == "CLOSE" and a in ENDING else LAYOUT[b])
        bend = 0.25 if (b, a) in pairs else 0.08
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", color="#555555", lw=1.0, shrinkA=16, shrinkB=16,
                                    connectionstyle=f"arc3,rad={bend}"))
        ax.text((x0 + x1) / 2 + bend * (y1 - y0) * 0.5, (y0 + y1) / 2 - bend * (x1 - x0) * 0.5, " / ".join(events),
                fontsize=7, ha="center", va="center", color="#1a5276", bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=0.3))
    for state, (x, y) in [*LAYOUT.items(), ("CLOSE", END)]:
        ax.text(x, y, state, ha="center", va="center", fontsize=10, weight="bold",
                bbox=dict(boxstyle="round,pad=0.4", facecolor=STATE_COLOURS.get(state, "white"),
                          edgecolor="black", linewidth=2.5 if state in highlight else 0.8))
    ax.set_xlim(-0.6, 4.6)
    ax.set_ylim(-0.6, 9.6)
    ax.axis("off")
    ax.set_title("TCP states (RFC 9293), drawn from course.tcpstates.TRANSITIONS; any synchronized state goes to CLOSE on 'recv RST'; a resent FIN keeps CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT", fontsize=9)
    fig.tight_layout()
    return fig


def texts_of(fig) -> list[str]:
    """Every text drawn on a figure (titles, labels, annotations): what the tests look for."""
    out = []
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
        out.append(ax.get_title())
        out += [t.get_text() for t in ax.get_yticklabels()]
    return [t for t in out if t]
