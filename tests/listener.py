"""A TCP listener on 127.0.0.1 for the box's attack tests: it counts connections and keeps what
each sent (bounded), and stops with the test (the ``listener`` fixture of conftest.py). Never any
other address."""

from __future__ import annotations

import socket
import threading

#: What one connection may send before the listener stops reading it.
MAX_BYTES = 4_000_000


class Listener:
    """Accepts on 127.0.0.1 in a thread of its own until :meth:`close`."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        return len(self.received)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(2)
            data = b""
            try:
                while chunk := conn.recv(65536):
                    data += chunk
                    if len(data) > MAX_BYTES:
                        break
            except OSError:
                pass
            self.received.append(data)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
        self.sock.close()
