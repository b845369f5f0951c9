"""One connection to one address: the STARTTLS dialogue, the TLS handshake, the presented chain.

Every read is bounded in time (`Limits.read_timeout`) and in size, and the whole exchange by a
monotonic deadline, so a server that never greets, trickles bytes or sends a chain without end
gives one `Handshake` with a status and a one-line reason. The TLS handshake runs over memory
BIOs (pyOpenSSL, which acme already requires): this module moves the bytes itself, so the same
deadline and byte cap hold inside the handshake. No certificate is verified here; whether the
chain is authenticated is the matcher's question (tlsa.matching), asked by probe.verdict.
No mail is sent: the dialogue ends with QUIT (LOGOUT for IMAP) once the chain is in hand.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL


class Protocol(str, Enum):
    """How TLS starts on a port."""

    SMTP = "smtp"
    """ESMTP STARTTLS (RFC 3207): 220 greeting, EHLO, STARTTLS in the EHLO reply, 220."""
    IMAP = "imap"
    """IMAP STARTTLS (RFC 3501 §6.2.1, RFC 2595 §3.1)."""
    POP3 = "pop3"
    """POP3 STLS (RFC 2595 §4, CAPA from RFC 2449)."""
    TLS = "tls"
    """Implicit TLS from the first byte (RFC 8314 §3.3 for 465, 993 and 995)."""


PORT_PROTOCOLS: Mapping[int, Protocol] = {
    25: Protocol.SMTP,  # RFC 5321 relay, STARTTLS per RFC 3207
    587: Protocol.SMTP,  # RFC 6409 submission
    465: Protocol.TLS,  # RFC 8314 §3.3 submissions
    143: Protocol.IMAP,
    993: Protocol.TLS,
    110: Protocol.POP3,
    995: Protocol.TLS,
}
"""The protocol of the well-known ports; any other port is implicit TLS unless configured."""


def protocol_for_port(port: int, configured: Mapping[int, Protocol] | None = None) -> Protocol:
    """The protocol of `port`: as configured, else the well-known one, else implicit TLS."""
    if configured and port in configured:
        return configured[port]
    return PORT_PROTOCOLS.get(port, Protocol.TLS)


class ProbeStatus(str, Enum):
    """What came of one connection."""

    OK = "ok"
    """TLS established; the presented chain is in hand."""
    NO_TLS = "no-tls"
    """The server speaks the protocol but does not offer STARTTLS / STLS."""
    REJECTED = "rejected"
    """The server said no: a 4xx/5xx greeting, EHLO refused, STARTTLS answered with an error."""
    TLS_FAILED = "tls-failed"
    """The TLS handshake failed (alert, bad record, size limit, connection closed in it)."""
    REFUSED = "refused"
    """The TCP connection was refused (nothing listens there)."""
    TIMEOUT = "timeout"
    """No connection, no data in time, or the per-address deadline passed."""
    UNREACHABLE = "unreachable"
    """No route to the address (for example IPv6 without IPv6 connectivity)."""
    PROTOCOL_ERROR = "protocol-error"
    """Garbage instead of the protocol, lines or replies beyond the limits, early close."""


@dataclass(frozen=True)
class Limits:
    """Time and size bounds of one connection."""

    connect_timeout: float = 10.0
    read_timeout: float = 10.0
    """Seconds one read may wait for its first byte."""
    deadline: float = 30.0
    """Seconds for the whole exchange with one address, connect to QUIT."""
    max_line: int = 4096
    """Longest line accepted (RFC 5321 §4.5.3.1.5 allows 512 octets for a reply line)."""
    max_reply_lines: int = 200
    max_plain_bytes: int = 64 * 1024
    """Bytes read before TLS starts."""
    max_tls_bytes: int = 256 * 1024
    """Bytes read during the TLS handshake (a chain of ten RSA-4096 certificates is ~20 KiB)."""


@dataclass(frozen=True)
class Handshake:
    """The outcome of one connection."""

    status: ProbeStatus
    reason: str
    """One line for people."""
    chain: tuple[bytes, ...] = ()
    """The certificates the server presented, DER, in the order sent (leaf first)."""
    tls_version: str | None = None
    cipher: str | None = None
    elapsed: float = 0.0
    """Seconds from the start of the connect to the end."""


class _Stop(Exception):
    """Ends the exchange with a status; raised anywhere below `handshake()`."""

    def __init__(self, status: ProbeStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
        errno.EADDRNOTAVAIL,
        errno.EAFNOSUPPORT,
    }
)


def _excerpt(data: bytes, limit: int = 60) -> str:
    """Server text made safe for one line: printable ASCII, `\\xNN` for the rest, quoted."""
    text = "".join(chr(byte) if 0x20 <= byte < 0x7F else f"\\x{byte:02x}" for byte in data[:limit])
    return f"'{text}'" + ("..." if len(data) > limit else "")


class _Wire:
    """A connected socket with a deadline, a line reader and byte counters."""

    def __init__(self, sock: socket.socket, limits: Limits, deadline: float, budget: float) -> None:
        self.sock = sock
        self.limits = limits
        self.deadline = deadline
        self.budget = budget
        """Seconds the whole exchange was given (the address's, or what the run had left)."""
        self.buffer = b""
        self.plain_read = 0
        self.tls_read = 0
        self.waiting_for = "the greeting"

    def _wait(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Stop(
                ProbeStatus.TIMEOUT,
                f"gave up waiting for {self.waiting_for}: the exchange took longer than its "
                f"{self.budget:.3g} s budget",
            )
        return min(self.limits.read_timeout, left)

    def recv(self) -> bytes:
        """One read of what is there, at most a read timeout long; b"" when the peer closed."""
        wait = self._wait()
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(16384)
        except TimeoutError:
            if time.monotonic() >= self.deadline:
                self._wait()  # raises the deadline reason
            raise _Stop(
                ProbeStatus.TIMEOUT, f"no data for {wait:g} s while waiting for {self.waiting_for}"
            ) from None
        except OSError as exc:
            raise _Stop(
                ProbeStatus.PROTOCOL_ERROR,
                f"connection failed while waiting for {self.waiting_for}: {_oserror(exc)}",
            ) from exc

    def send(self, data: bytes) -> None:
        self.sock.settimeout(self._wait())
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise _Stop(
                ProbeStatus.TIMEOUT, f"the server does not read ({self.waiting_for})"
            ) from None
        except OSError as exc:
            raise _Stop(
                ProbeStatus.PROTOCOL_ERROR,
                f"connection failed before {self.waiting_for}: {_oserror(exc)}",
            ) from exc

    def line(self) -> bytes:
        """One CRLF- (or LF-) terminated line without its end, within the size limits."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                raw, self.buffer = self.buffer[:end], self.buffer[end + 1 :]
                if len(raw) > self.limits.max_line:
                    break
                return raw.rstrip(b"\r")
            if len(self.buffer) > self.limits.max_line:
                break
            chunk = self.recv()
            if not chunk:
                raise _Stop(
                    ProbeStatus.PROTOCOL_ERROR,
                    f"the server closed the connection while we waited for {self.waiting_for}"
                    + (f" (after {_excerpt(self.buffer)})" if self.buffer else ""),
                )
            self.plain_read += len(chunk)
            if self.plain_read > self.limits.max_plain_bytes:
                raise _Stop(
                    ProbeStatus.PROTOCOL_ERROR,
                    f"the server sent more than {self.limits.max_plain_bytes} bytes before TLS "
                    f"({self.waiting_for})",
                )
            self.buffer += chunk
        raise _Stop(
            ProbeStatus.PROTOCOL_ERROR,
            f"a line longer than {self.limits.max_line} bytes in {self.waiting_for}",
        )


def _oserror(exc: OSError) -> str:
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


# -- the plaintext dialogues ---------------------------------------------------------------

_SMTP_LINE = re.compile(rb"^([2-5][0-9][0-9])([ -]|$)(.*)$")


def _smtp_reply(wire: _Wire) -> tuple[int, list[bytes]]:
    """A reply: RFC 5321 §4.2, `ddd-text` lines ending with `ddd text`, one code throughout."""
    lines: list[bytes] = []
    code: bytes | None = None
    while len(lines) < wire.limits.max_reply_lines:
        raw = wire.line()
        match = _SMTP_LINE.match(raw)
        if match is None or (code is not None and match.group(1) != code):
            raise _Stop(
                ProbeStatus.PROTOCOL_ERROR,
                f"not an SMTP reply in {wire.waiting_for}: {_excerpt(raw)}",
            )
        code = match.group(1)
        lines.append(match.group(3))
        if match.group(2) != b"-":
            return int(code), lines
    raise _Stop(
        ProbeStatus.PROTOCOL_ERROR,
        f"{wire.waiting_for} has more than {wire.limits.max_reply_lines} lines",
    )


def _helo_name(sock: socket.socket) -> str:
    """Our address as an RFC 5321 §4.1.3 address literal: no DNS lookup of our own name."""
    address = str(sock.getsockname()[0])
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def _smtp(wire: _Wire, helo: str | None) -> None:
    code, text = _smtp_reply(wire)
    if code != 220:
        # RFC 5321 §3.1: a 554 greeting refuses service; the client sends QUIT.
        _quiet_send(wire, b"QUIT\r\n")
        raise _Stop(ProbeStatus.REJECTED, f"greeting {code} {_excerpt(text[0])}")
    wire.waiting_for = "the EHLO reply"
    wire.send(f"EHLO {helo or _helo_name(wire.sock)}\r\n".encode("ascii"))
    code, text = _smtp_reply(wire)
    if code != 250:
        _quiet_send(wire, b"QUIT\r\n")
        raise _Stop(ProbeStatus.REJECTED, f"EHLO answered {code} {_excerpt(text[0])}")
    # RFC 3207 §4: the extension is the keyword STARTTLS on an EHLO reply line (not the first).
    keywords = {line.split(b" ", 1)[0].upper() for line in text[1:]}
    if b"STARTTLS" not in keywords:
        _quiet_send(wire, b"QUIT\r\n")
        raise _Stop(ProbeStatus.NO_TLS, "STARTTLS is not offered in the EHLO reply")
    wire.waiting_for = "the reply to STARTTLS"
    wire.send(b"STARTTLS\r\n")
    code, text = _smtp_reply(wire)
    if code != 220:
        _quiet_send(wire, b"QUIT\r\n")
        raise _Stop(ProbeStatus.REJECTED, f"STARTTLS answered {code} {_excerpt(text[0])}")


def _imap(wire: _Wire) -> None:
    greeting = wire.line()
    upper = greeting.upper()
    if upper.startswith(b"* BYE"):
        raise _Stop(ProbeStatus.REJECTED, f"greeting {_excerpt(greeting)}")
    if not upper.startswith(b"* OK"):
        # `* PREAUTH` (RFC 3501 §7.1.4) leaves no room for STARTTLS; anything else is garbage.
        status = (
            ProbeStatus.NO_TLS if upper.startswith(b"* PREAUTH") else ProbeStatus.PROTOCOL_ERROR
        )
        raise _Stop(status, f"not an IMAP OK greeting: {_excerpt(greeting)}")
    wire.waiting_for = "the CAPABILITY reply"
    wire.send(b"a1 CAPABILITY\r\n")
    capabilities: set[bytes] = set()
    for _ in range(wire.limits.max_reply_lines):
        line = wire.line()
        if line.upper().startswith(b"* CAPABILITY "):
            capabilities.update(word.upper() for word in line.split()[2:])
        elif line.startswith(b"a1 "):
            break
        elif not line.startswith(b"*"):
            raise _Stop(ProbeStatus.PROTOCOL_ERROR, f"not an IMAP response: {_excerpt(line)}")
    else:
        raise _Stop(ProbeStatus.PROTOCOL_ERROR, "no end to the CAPABILITY reply")
    if b"STARTTLS" not in capabilities:
        _quiet_send(wire, b"a3 LOGOUT\r\n")
        raise _Stop(ProbeStatus.NO_TLS, "STARTTLS is not among the IMAP capabilities")
    wire.waiting_for = "the reply to STARTTLS"
    wire.send(b"a2 STARTTLS\r\n")
    for _ in range(wire.limits.max_reply_lines):
        line = wire.line()
        if line.startswith(b"a2 "):
            if not line[3:].upper().startswith(b"OK"):
                _quiet_send(wire, b"a3 LOGOUT\r\n")
                raise _Stop(ProbeStatus.REJECTED, f"STARTTLS answered {_excerpt(line)}")
            return
    raise _Stop(ProbeStatus.PROTOCOL_ERROR, "no tagged reply to STARTTLS")


def _pop3(wire: _Wire) -> None:
    greeting = wire.line()
    if greeting.startswith(b"-ERR"):
        raise _Stop(ProbeStatus.REJECTED, f"greeting {_excerpt(greeting)}")
    if not greeting.startswith(b"+OK"):
        raise _Stop(ProbeStatus.PROTOCOL_ERROR, f"not a POP3 greeting: {_excerpt(greeting)}")
    wire.waiting_for = "the CAPA reply"
    wire.send(b"CAPA\r\n")
    first = wire.line()
    offered: bool | None = None  # None: the server has no CAPA (RFC 2449 is optional)
    if first.startswith(b"+OK"):
        offered = False
        for _ in range(wire.limits.max_reply_lines):
            line = wire.line()
            if line == b".":
                break
            offered |= line.split(b" ", 1)[0].upper() == b"STLS"
        else:
            raise _Stop(ProbeStatus.PROTOCOL_ERROR, "no end to the CAPA reply")
    if offered is False:
        _quiet_send(wire, b"QUIT\r\n")
        raise _Stop(ProbeStatus.NO_TLS, "STLS is not among the POP3 capabilities")
    wire.waiting_for = "the reply to STLS"
    wire.send(b"STLS\r\n")
    line = wire.line()
    if not line.startswith(b"+OK"):
        _quiet_send(wire, b"QUIT\r\n")
        status = ProbeStatus.REJECTED if offered else ProbeStatus.NO_TLS
        raise _Stop(status, f"STLS answered {_excerpt(line)}")


def _quiet_send(wire: _Wire, data: bytes) -> None:
    """A polite last word that may fail without changing the outcome."""
    try:
        wire.sock.settimeout(max(0.01, min(1.0, wire.deadline - time.monotonic())))
        wire.sock.sendall(data)
    except OSError:
        pass


# -- TLS ------------------------------------------------------------------------------------


_GOODBYE = {Protocol.SMTP: b"QUIT\r\n", Protocol.POP3: b"QUIT\r\n", Protocol.IMAP: b"a3 LOGOUT\r\n"}


def _server_name(host: str | None) -> bytes | None:
    """The SNI to send: the host name without a trailing dot (RFC 6066 §3); none for an IP."""
    if not host:
        return None
    name = host.rstrip(".")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name.encode("idna")
    return None


def _flush(connection: SSL.Connection, wire: _Wire) -> None:
    while True:
        try:
            data = connection.bio_read(65536)
        except SSL.WantReadError:
            return
        if not data:
            return
        wire.send(data)


def _tls_error(exc: SSL.Error) -> str:
    parts: list[str] = []
    for item in exc.args[0] if exc.args and isinstance(exc.args[0], list) else []:
        if isinstance(item, tuple) and item:
            parts.append(str(item[-1]))
    return "; ".join(dict.fromkeys(parts)) or str(exc) or type(exc).__name__


def _tls(wire: _Wire, server_name: bytes | None, goodbye: bytes | None) -> Handshake:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    # No verification here (VERIFY_NONE is the client default): DANE decides, not the PKIX
    # roots (RFC 7672 §3.1); the chain is judged afterwards by tlsa.matching.
    context.set_verify(SSL.VERIFY_NONE)
    connection = SSL.Connection(context, None)
    connection.set_connect_state()
    if server_name is not None:
        connection.set_tlsext_host_name(server_name)  # RFC 7672 §8.1: the MX host name
    wire.waiting_for = "the TLS handshake"
    while True:
        try:
            connection.do_handshake()
            done = True
        except SSL.WantReadError:
            done = False
        except SSL.Error as exc:
            with contextlib.suppress(_Stop):
                _flush(connection, wire)  # our alert, if any
            raise _Stop(ProbeStatus.TLS_FAILED, f"TLS handshake failed: {_tls_error(exc)}") from exc
        _flush(connection, wire)
        if done:
            break
        try:
            chunk = wire.recv()
        except _Stop as stop:
            if stop.status is ProbeStatus.PROTOCOL_ERROR:
                raise _Stop(ProbeStatus.TLS_FAILED, stop.reason) from None
            raise
        if not chunk:
            raise _Stop(
                ProbeStatus.TLS_FAILED, "the server closed the connection in the TLS handshake"
            )
        wire.tls_read += len(chunk)
        if wire.tls_read > wire.limits.max_tls_bytes:
            raise _Stop(
                ProbeStatus.TLS_FAILED,
                f"the TLS handshake exceeded {wire.limits.max_tls_bytes} bytes (a huge chain?)",
            )
        connection.bio_write(chunk)
    presented = connection.get_peer_cert_chain() or []
    chain = tuple(c.to_cryptography().public_bytes(serialization.Encoding.DER) for c in presented)
    version = connection.get_protocol_version_name()
    cipher = connection.get_cipher_name()
    _goodbye(connection, wire, goodbye)
    if not chain:
        return Handshake(ProbeStatus.TLS_FAILED, "TLS established, but no certificate was sent")
    count = f"{len(chain)} certificate{'s' if len(chain) != 1 else ''}"
    return Handshake(ProbeStatus.OK, f"{version}, {cipher}, {count}", chain, version, cipher)


def _goodbye(connection: SSL.Connection, wire: _Wire, goodbye: bytes | None) -> None:
    """QUIT inside TLS and a close_notify; best effort, nothing waits for an answer."""
    try:
        if goodbye is not None:
            connection.sendall(goodbye)
        connection.shutdown()
        _flush(connection, wire)
    except (SSL.Error, _Stop):
        pass


# -- one address ----------------------------------------------------------------------------


def _connect(address: str, port: int, limits: Limits, deadline: float) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    wait = min(limits.connect_timeout, deadline - time.monotonic())
    if wait <= 0:
        raise _Stop(ProbeStatus.TIMEOUT, "no time left to connect within the budget")
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise _Stop(ProbeStatus.UNREACHABLE, f"cannot open a socket: {_oserror(exc)}") from exc
    try:
        sock.settimeout(wait)
        sock.connect((address, port))
    except ConnectionRefusedError:
        sock.close()
        raise _Stop(
            ProbeStatus.REFUSED, f"connection refused (nothing listens on {port}?)"
        ) from None
    except TimeoutError:
        sock.close()
        raise _Stop(ProbeStatus.TIMEOUT, f"no answer to connect within {wait:g} s") from None
    except OSError as exc:
        sock.close()
        status = (
            ProbeStatus.UNREACHABLE if exc.errno in _UNREACHABLE_ERRNOS else ProbeStatus.REFUSED
        )
        raise _Stop(status, f"cannot connect: {_oserror(exc)}") from exc
    return sock


def handshake(
    address: str,
    port: int,
    protocol: Protocol,
    server_name: str | None,
    *,
    limits: Limits | None = None,
    helo: str | None = None,
    deadline: float | None = None,
) -> Handshake:
    """Connect to `address`:`port`, start TLS as `protocol` says, return the presented chain.

    `server_name` is sent as SNI (RFC 7672 §8.1: the MX host name). `deadline` (a
    time.monotonic() value) ends the exchange early when a run's budget ends first. Never
    raises for anything the server does; the outcome is in the status and reason.
    """
    limits = limits or Limits()
    started = time.monotonic()
    end = started + limits.deadline
    if deadline is not None:
        end = min(end, deadline)
    sock: socket.socket | None = None
    try:
        sock = _connect(address, port, limits, end)
        wire = _Wire(sock, limits, end, end - started)
        if protocol is Protocol.SMTP:
            _smtp(wire, helo)
        elif protocol is Protocol.IMAP:
            _imap(wire)
        elif protocol is Protocol.POP3:
            _pop3(wire)
        if wire.buffer:
            # RFC 3207 §5 / CVE-2011-0411: bytes after the 220 were sent before TLS started
            # and must not be taken as part of it.
            raise _Stop(
                ProbeStatus.PROTOCOL_ERROR,
                f"the server sent data after agreeing to start TLS: {_excerpt(wire.buffer)}",
            )
        result = _tls(wire, _server_name(server_name), _GOODBYE.get(protocol))
    except _Stop as stop:
        result = Handshake(stop.status, stop.reason)
    finally:
        if sock is not None:
            sock.close()
    return Handshake(
        result.status,
        result.reason,
        result.chain,
        result.tls_version,
        result.cipher,
        round(time.monotonic() - started, 3),
    )
