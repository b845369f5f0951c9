"""A forging man in the middle: a UDP+TCP DNS proxy that flips a byte of every TLSA rdata.

It sits between a validating resolver and the authoritative server and leaves the RRSIGs as
they are, so the forged RRset no longer matches its signature (RFC 4035 §5.3): the resolver
behind it must answer SERVFAIL with EDE 6 "DNSSEC Bogus" (RFC 8914 §4.7).
Runs in threads of the test process; `stop()` shuts both listeners down.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.TLSA import TLSA


def forge(reply: dns.message.Message) -> int:
    """Flip the last byte of every TLSA rdata in the answer section; returns how many."""
    forged = 0
    for index, rrset in enumerate(reply.answer):
        if rrset.rdtype != dns.rdatatype.TLSA:
            continue
        changed = []
        for rdata in rrset:
            assert isinstance(rdata, TLSA)
            cert = bytes(rdata.cert)
            changed.append(rdata.replace(cert=cert[:-1] + bytes([cert[-1] ^ 0xFF])))
        reply.answer[index] = dns.rrset.from_rdata_list(rrset.name, rrset.ttl, changed)
        forged += len(changed)
    return forged


class TamperProxy:
    """Listens on 127.0.0.1@port (UDP and TCP) and forwards to `upstream`, forging TLSA."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.address = "127.0.0.1"
        self.port = port
        self.upstream = upstream
        self.forged = 0
        self._lock = threading.Lock()
        proxy = self

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                out = proxy.relay(data, tcp=False)
                if out is not None:
                    sock.sendto(out, self.client_address)

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(5.0)
                while True:
                    header = _recv_exactly(conn, 2)
                    if header is None:
                        return
                    data = _recv_exactly(conn, struct.unpack("!H", header)[0])
                    if data is None:
                        return
                    out = proxy.relay(data, tcp=True)
                    if out is None:
                        return
                    conn.sendall(struct.pack("!H", len(out)) + out)

        class UDPServer(socketserver.ThreadingUDPServer):
            daemon_threads = True

        class TCPServer(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._servers: list[socketserver.BaseServer] = [
            UDPServer((self.address, port), UDPHandler),
            TCPServer((self.address, port), TCPHandler),
        ]
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
            for server in self._servers
        ]

    def relay(self, data: bytes, tcp: bool) -> bytes | None:
        """Ask upstream the same question over the same transport and forge the answer."""
        try:
            query = dns.message.from_wire(data)
            host, port = self.upstream
            if tcp:
                reply = dns.query.tcp(query, host, port=port, timeout=3.0)
            else:
                reply = dns.query.udp(query, host, port=port, timeout=3.0)
        except (dns.exception.DNSException, OSError):
            return None  # the resolver behind us times out and retries, as with a lost packet
        count = forge(reply)
        with self._lock:
            self.forged += count
        # Same sizes as upstream's answer: a truncated UDP answer stays truncated.
        return reply.to_wire(max_size=65535)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5.0)


def _recv_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = conn.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data
