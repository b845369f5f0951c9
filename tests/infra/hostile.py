"""Small loopback servers that misbehave on purpose, for the probe's wire tests.

One `LoopbackServer` accepts on 127.0.0.x (or ::1) in a thread and hands each connection to a
handler in its own thread; `stop()` closes the listener and every connection, and joins the
threads with a bound. The handlers are plain functions of the socket: an SMTP, IMAP or POP3
dialogue with a knob for each way a server can go wrong, or a raw behaviour (silence, a
trickle, an endless line). TLS on the server side is the standard ssl module's.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

Handler = Callable[[socket.socket, threading.Event], None]
"""Serves one connection; returns when done or when the event (stop) is set."""


class LoopbackServer:
    """A threaded TCP server on a loopback address; each connection goes to `handler`."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0
        self._acceptor = threading.Thread(target=self._accept, name=f"hostile {host}", daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._acceptor.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10.0)  # a handler never blocks for ever, even if stop is missed
            with self._lock:
                self.accepted += 1
                self._connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, ValueError):
            self.handler(conn, self._stop)
        with contextlib.suppress(OSError):
            conn.close()

    def stop(self, grace: float = 5.0) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        end = time.monotonic() + grace
        for thread in [self._acceptor, *threads]:
            if thread.is_alive():
                thread.join(max(0.0, end - time.monotonic()))
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.close()


@contextlib.contextmanager
def serving(handler: Handler, host: str = "127.0.0.1", port: int = 0) -> Iterator[LoopbackServer]:
    server = LoopbackServer(handler, host, port)
    with server:
        yield server


# -- building blocks --------------------------------------------------------------------------


def _sleep(stop: threading.Event, seconds: float) -> bool:
    """Sleep unless stopped; True when stopped."""
    return stop.wait(seconds)


def _read_line(conn: socket.socket, stop: threading.Event, limit: int = 4096) -> bytes | None:
    data = b""
    while not stop.is_set() and len(data) < limit:
        try:
            byte = conn.recv(1)
        except TimeoutError:
            return None
        if not byte:
            return None
        data += byte
        if byte == b"\n":
            return data
    return None


def tls_context(cert_chain: Path, key: Path, seen_names: list[str] | None = None) -> ssl.SSLContext:
    """A server context serving `cert_chain` (leaf first, PEM) with `key`; SNI names are
    appended to `seen_names` when given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_chain), str(key))
    if seen_names is not None:

        def remember(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            seen_names.append(name or "")

        context.sni_callback = remember
    return context


def _tls_then_goodbye(conn: socket.socket, context: ssl.SSLContext, stop: threading.Event) -> None:
    tls = context.wrap_socket(conn, server_side=True)
    with contextlib.suppress(OSError, ssl.SSLError):
        tls.settimeout(2.0)
        tls.recv(1024)  # QUIT / LOGOUT, or close_notify
    with contextlib.suppress(OSError, ssl.SSLError):
        tls.close()


# -- SMTP -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Smtp:
    """An SMTP server's script (RFC 5321, RFC 3207), each step replaceable by a fault."""

    greeting: bytes = b"220 hostile.test ESMTP\r\n"
    greeting_delay: float = 0.0
    ehlo: bytes = b"250-hostile.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
    starttls: bytes = b"220 2.0.0 Ready to start TLS\r\n"
    after_starttls: bytes = b""
    """Bytes sent right after the 220 (before TLS): a STARTTLS injection."""
    tls: ssl.SSLContext | None = None
    """None: after the 220, `instead_of_tls` is sent and the connection closed."""
    instead_of_tls: bytes = b""
    """Sent in answer to the client's first TLS bytes, instead of a ServerHello."""
    log: list[bytes] = field(default_factory=list, compare=False)
    """Every line the client sent, in order."""

    def __call__(self, conn: socket.socket, stop: threading.Event) -> None:
        if self.greeting_delay and _sleep(stop, self.greeting_delay):
            return
        conn.sendall(self.greeting)
        if not self.greeting.startswith(b"220"):
            self._drain(conn, stop)
            return
        while not stop.is_set():
            line = _read_line(conn, stop)
            if line is None:
                return
            self.log.append(line)
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(self.ehlo)
            elif verb == b"STARTTLS":
                conn.sendall(self.starttls + self.after_starttls)
                if not self.starttls.startswith(b"220"):
                    continue
                if self.tls is None:
                    if self.instead_of_tls:
                        conn.recv(65536)  # the ClientHello: answer it, not race it
                        conn.sendall(self.instead_of_tls)
                    return
                _tls_then_goodbye(conn, self.tls, stop)
                return
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")

    def _drain(self, conn: socket.socket, stop: threading.Event) -> None:
        line = _read_line(conn, stop)
        if line is not None:
            self.log.append(line)


def implicit_tls(context: ssl.SSLContext, delay: float = 0.0) -> Handler:
    """TLS from the first byte (RFC 8314), after `delay` seconds of silence."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        if delay and _sleep(stop, delay):
            return
        _tls_then_goodbye(conn, context, stop)

    return handle


def imap(context: ssl.SSLContext | None, *, capabilities: bytes = b"IMAP4rev1 STARTTLS") -> Handler:
    """An IMAP server that answers CAPABILITY and STARTTLS (RFC 3501 §6.1.1, §6.2.1)."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"* OK hostile IMAP ready\r\n")
        while not stop.is_set():
            line = _read_line(conn, stop)
            if line is None:
                return
            tag, _, rest = line.strip().partition(b" ")
            command = rest.upper()
            if command == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY " + capabilities + b"\r\n" + tag + b" OK done\r\n")
            elif command == b"STARTTLS" and context is not None:
                conn.sendall(tag + b" OK Begin TLS negotiation now\r\n")
                _tls_then_goodbye(conn, context, stop)
                return
            elif command == b"LOGOUT":
                conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return
            else:
                conn.sendall(tag + b" BAD unknown\r\n")

    return handle


def pop3(context: ssl.SSLContext | None, *, capa: bytes = b"USER\r\nSTLS\r\n") -> Handler:
    """A POP3 server that answers CAPA and STLS (RFC 2449, RFC 2595 §4)."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"+OK hostile POP3 ready\r\n")
        while not stop.is_set():
            line = _read_line(conn, stop)
            if line is None:
                return
            command = line.strip().upper()
            if command == b"CAPA":
                conn.sendall(b"+OK\r\n" + capa + b".\r\n")
            elif command == b"STLS" and context is not None:
                conn.sendall(b"+OK Begin TLS\r\n")
                _tls_then_goodbye(conn, context, stop)
                return
            elif command == b"QUIT":
                conn.sendall(b"+OK bye\r\n")
                return
            else:
                conn.sendall(b"-ERR unknown\r\n")

    return handle


# -- raw behaviours ---------------------------------------------------------------------------


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accepts and never says a word."""
    stop.wait(30.0)


def send_then_hold(data: bytes) -> Handler:
    """Sends `data` at once, then keeps the connection open and silent."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(data)
        stop.wait(30.0)

    return handle


def send_then_close(data: bytes) -> Handler:
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(data)

    return handle


def trickle(data: bytes, interval: float) -> Handler:
    """Sends `data` one byte every `interval` seconds, over and over."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        position = 0
        while not _sleep(stop, interval):
            conn.sendall(data[position : position + 1])
            position = (position + 1) % len(data)

    return handle


def endless(chunk: bytes, total: int) -> Handler:
    """Sends `chunk` repeatedly, up to `total` bytes, as fast as the client reads."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        sent = 0
        while sent < total and not stop.is_set():
            conn.sendall(chunk)
            sent += len(chunk)
        stop.wait(5.0)

    return handle


@contextlib.contextmanager
def unresponsive(host: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """An address and port where connect() hangs: a listener whose accept queue is full.

    Linux drops a SYN when the listener's accept queue is full, so the client's connect
    waits (and retransmits) until its timeout; nothing leaves loopback.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind((host, 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(8):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((host, port))
            fillers.append(filler)
        time.sleep(0.2)  # let the handshakes of the fillers complete and fill the queue
        yield host, port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
