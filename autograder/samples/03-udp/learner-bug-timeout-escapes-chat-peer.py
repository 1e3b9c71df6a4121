# what: (written by a learner helper who saw only the released notebook) sets the timeout and calls recvfrom, but lets TimeoutError escape from receive instead of returning None when nothing came.
# cell: ChatPeer
# fails: chat-peer-lines
# (the rule it breaks, in the exercise's words: `receive(timeout)` waits at most `timeout` seconds for one datagram and returns `(text, sender)`, the decoded text and the sender's address as `recvfrom` returned it, or `None` if nothing came;)
import socket


class ChatPeer:
    """One end of a UDP chat: a socket bound to (host, 0) that sends and receives lines."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.address = self.sock.getsockname()

    def send(self, text, to):
        """Send one line to the address `to`."""
        self.sock.sendto(text.encode("utf-8"), to)

    def receive(self, timeout):
        """(text, sender) of the next line, or None after `timeout` seconds."""
        self.sock.settimeout(timeout)
        data, sender = self.sock.recvfrom(65535)
        return data.decode("utf-8"), sender

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
