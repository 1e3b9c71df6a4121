# what: (written by a learner helper who saw only the released notebook) wraps the given listener in a socketserver.ThreadingTCPServer subclass (one handler thread per client), polls handle_request every 0.05 s until stop is set, and lets ThreadingMixIn join the handler threads without closing the caller's listener.
# cell: serve_echo
# fails: none
import socketserver


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        conn, stop = self.request, self.server.stop
        conn.settimeout(0.05)
        try:
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    return
                conn.sendall(data)
        except OSError:          # reset, broken pipe: this client only, quietly
            pass


class _KeepListener:
    def server_close(self):      # the caller owns the listener and closes it
        pass


class _EchoServer(socketserver.ThreadingMixIn, _KeepListener, socketserver.TCPServer):
    daemon_threads = False
    block_on_close = True        # server_close() joins every handler thread
    timeout = 0.05               # handle_request() waits at most this long

    def __init__(self, listener, stop):
        super().__init__(listener.getsockname(), _EchoHandler, bind_and_activate=False)
        self.socket.close()      # the fresh socket TCPServer made is not needed
        self.socket = listener
        self.stop = stop

    def handle_error(self, request, client_address):
        pass                     # no traceback for a client that vanished


def serve_echo(listener, stop):
    """Echo every byte back to every client of `listener`, each client in its own thread,
    until `stop` is set; then return within 1 s, leaving no socket and no thread behind."""
    server = _EchoServer(listener, stop)
    try:
        while not stop.is_set():
            server.handle_request()
    finally:
        server.server_close()
