# what: ChatPeer with recvmsg, a timeout restored after each receive, and close through a closed flag
# cell: ChatPeer
# fails: none
class ChatPeer:
    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.address = self.sock.getsockname()

    def send(self, text, to):
        self.sock.sendto(bytes(text, "utf-8"), tuple(to))

    def receive(self, timeout):
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data, _, _, sender = self.sock.recvmsg(65535)
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(old)
        return str(data, "utf-8"), sender

    def close(self):
        if self.sock.fileno() != -1:
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
