"""course.drawing: each picture renders with the Agg backend and shows the labels it promises."""
from __future__ import annotations

import io
import socket

import matplotlib

matplotlib.use("Agg")

from course import capture, drawing, kernel, tcpstates  # noqa: E402
from course.deadline import wait_for  # noqa: E402


def render(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue().startswith(b"\x89PNG")
    return buf.getvalue()


def test_sequence_diagram_of_the_recording_labels_every_segment():
    segs = capture.relative(capture.load_recording("client closes first").segments)
    labels = capture.label_segments(segs)
    fig = drawing.sequence_diagram(segs, title="recording", labels=labels)
    render(fig)
    texts = drawing.texts_of(fig)
    assert "client" in texts and "server" in texts and "recording" in texts
    assert "1. [SYN] seq=0 ack=0 len=0 mss=65495" in texts
    assert "2. [SYN,ACK] seq=0 ack=1 len=0 mss=65495" in texts
    assert sum(t.startswith(f"{i}. [") for i in range(1, len(segs) + 1) for t in texts) == len(segs)
    assert set(labels) <= set(texts)


def test_state_timeline_from_a_real_recorder():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname(), timeout=2)
        server, _ = listener.accept()
        with kernel.StateRecorder(client=client, server=server) as rec:
            client.close()
            wait_for(lambda: "CLOSE_WAIT" in rec.states("server"), 2.0, "the recorder never saw CLOSE_WAIT")
            server.close()
            kernel.wait_for_state(listener.getsockname()[1], "TIME_WAIT")
    fig = drawing.state_timeline(rec, title="close")
    render(fig)
    texts = drawing.texts_of(fig)
    assert {"client", "server", "ESTABLISHED", "CLOSE_WAIT", "TIME_WAIT", "close"} <= set(texts)


def test_state_timeline_accepts_a_plain_timeline():
    fig = drawing.state_timeline({"a": [(0.0, 1.0, "LISTEN"), (1.0, 2.0, "CLOSE")]})
    render(fig)
    assert {"a", "LISTEN", "CLOSE"} <= set(drawing.texts_of(fig))


def test_state_diagram_draws_every_state_and_the_events_of_the_table():
    fig = drawing.state_diagram(highlight=["TIME_WAIT"])
    render(fig)
    texts = drawing.texts_of(fig)
    assert set(tcpstates.STATES) <= set(texts)
    joined = " | ".join(texts)
    for event in ("recv SYN+ACK", "recv ACK of FIN", "recv FIN+ACK", "2MSL", "listen", "connect"):
        assert event in joined


def test_state_diagram_follows_the_table_it_is_given():
    fig = drawing.state_diagram({("CLOSE", "passive_open"): "LISTEN"})
    joined = " | ".join(drawing.texts_of(fig))
    assert "listen" in joined and "recv FIN" not in joined
