"""ACME Renewal Information (RFC 9773): the window in which the CA suggests renewing.

A renewal inside the window brings a new key (unless the key is reused) and possibly another
intermediate; knowing when the window opens says how long the published records have to be
ready. The request goes through the acme library certbot itself uses, imported only here and
only when a window is asked for.

acme 4.1 (certbot 4.1.0, the release that made certbot follow ARI) added
`ClientV2.renewal_time`; it returns one random instant inside the window, drawn anew on every
call, which is when *that* certbot run would renew. dane-hook needs the window itself (it
opens at `start`), so it lets `renewal_time` make and check the request and reads the window
from the response it fetched. Older acme (Debian 12's 2.1) has no ARI at all; there the same
request is made with the primitives 2.1 has (`ClientV2.get_directory`, `ClientNetwork.get`,
the RFC 3339 field decoder). certbot of those versions does not follow the window (it renews
`renew_before_expiry`, 30 days, before expiry), so the window then says what the CA wants,
for instance an early renewal before a revocation, not when certbot will act.

Nothing here raises: a CA without renewalInfo (Pebble as Debian ships it), an unreachable or
misbehaving one, gives no window and one line saying why.
"""

from __future__ import annotations

import base64
import email.utils
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dane_hook import __version__
from dane_hook.certs.chain import not_after

USER_AGENT = f"dane-hook/{__version__} (ARI, RFC 9773)"


@dataclass(frozen=True)
class Window:
    """The suggested renewal window of RFC 9773 §4.2, in UTC."""

    start: datetime
    end: datetime
    retry_after: datetime | None = None
    """When to ask again (the response's Retry-After, RFC 9773 §4.3)."""
    explanation_url: str | None = None

    def opens_by(self, moment: datetime) -> bool:
        """Whether a renewal may happen at `moment` or earlier."""
        return self.start <= moment


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def certificate_id(certificate: x509.Certificate, issuer: x509.Certificate | None = None) -> str:
    """The ARI certificate identifier (RFC 9773 §4.1): base64url of the Authority Key
    Identifier's keyIdentifier, ".", base64url of the serial number's DER INTEGER bytes.

    Without an AKI extension the issuer's own key identifier stands in (its SKI, else the
    RFC 5280 §4.2.1.2 method 1 digest of its key): that is the value an AKI would hold.
    """
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        key_id = aki.value.key_identifier
    except x509.ExtensionNotFound:
        key_id = None
    if key_id is None:
        if issuer is None:
            raise ValueError("the certificate has no Authority Key Identifier and no issuer")
        try:
            key_id = issuer.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            ).value.digest
        except x509.ExtensionNotFound:
            key_id = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
    serial = certificate.serial_number
    # A DER INTEGER is two's complement: one more bit for the sign, as acme's own encoder does.
    length = (serial.bit_length() + 8) // 8
    return f"{_b64url(key_id)}.{_b64url(serial.to_bytes(length, 'big', signed=True))}"


def renewal_window(
    directory_url: str,
    certificate: x509.Certificate,
    issuer: x509.Certificate | None,
    *,
    timeout: float,
    ca_bundle: str | None = None,
    now: datetime | None = None,
) -> tuple[Window | None, str]:
    """The CA's suggested renewal window for `certificate`, or None; and one line saying so.

    `directory_url` is the ACME directory the certificate was ordered from (certbot's
    `server` in renewal/NAME.conf); `ca_bundle` a PEM file of CAs to trust for it instead of
    the system's; `timeout` is per HTTP request.
    """
    moment = now or datetime.now(timezone.utc)
    if not_after(certificate) <= moment:
        # RFC 9773 §4.3: renewal information is not requested for an expired certificate.
        return None, "the certificate has expired: no renewal window is asked for; renew it now"
    try:
        identifier = certificate_id(certificate, issuer)
    except ValueError as exc:
        return None, f"no ARI certificate identifier: {exc}"
    try:
        from acme import client as acme_client
    except ImportError:
        return None, "the acme library is not installed: no renewal window"
    return _ask(acme_client, directory_url, certificate, identifier, timeout, ca_bundle, moment)


def _ask(
    acme_client: Any,
    directory_url: str,
    certificate: x509.Certificate,
    identifier: str,
    timeout: float,
    ca_bundle: str | None,
    now: datetime,
    *,
    through_renewal_time: bool | None = None,
) -> tuple[Window | None, str]:
    """The request itself, through `renewal_time` when the acme library has it (or as
    `through_renewal_time` says: the tests run both ways on one acme)."""
    if through_renewal_time is None:
        through_renewal_time = hasattr(acme_client.ClientV2, "renewal_time")
    try:
        net = _recording_network(acme_client)(
            key=None, verify_ssl=ca_bundle or True, user_agent=USER_AGENT, timeout=timeout
        )
        directory = acme_client.ClientV2.get_directory(directory_url, net)
        try:
            base = directory["renewalInfo"]
        except KeyError:
            return None, (
                f"{directory_url}: the CA's directory has no renewalInfo, it offers no "
                "renewal window (RFC 9773 §3)"
            )
        url = f"{base}/{identifier}"
        if through_renewal_time and _has_key_identifier(certificate):
            client = acme_client.ClientV2(directory, net)
            client.renewal_time(certificate.public_bytes(serialization.Encoding.PEM))
            response = net.fetched.get(url)
            if response is None:
                return None, f"{directory_url}: the acme library asked for no renewal window"
        else:
            response = net.get(url, content_type="application/json")
        window = _window(response, now)
    except Exception as exc:  # anything the network, the CA or acme throws: no window
        return None, f"{directory_url}: no renewal window ({_why(exc, timeout)})"
    if window.end < window.start:
        return None, f"{url}: the suggested window ends before it starts (RFC 9773 §4.2)"
    return window, f"the CA suggests renewing between {_utc(window.start)} and {_utc(window.end)}"


@functools.cache
def _recording_network(acme_client: Any) -> Any:
    """acme's ClientNetwork, keeping the responses of its GETs by URL: `renewal_time` reads
    the renewal information but returns only a random instant inside the window."""

    class RecordingNetwork(acme_client.ClientNetwork):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.fetched: dict[str, Any] = {}

        def get(self, url: str, *args: Any, **kwargs: Any) -> Any:
            response = super().get(url, *args, **kwargs)
            self.fetched[url] = response
            return response

    return RecordingNetwork


def _has_key_identifier(certificate: x509.Certificate) -> bool:
    """acme's `renewal_time` builds the identifier from the AKI only."""
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return False
    return aki.value.key_identifier is not None


def _window(response: Any, now: datetime) -> Window:
    """The window of a renewalInfo response, decoded by acme's RFC 3339 field (both versions)."""
    from acme.fields import RFC3339Field

    document = response.json()
    suggested = document["suggestedWindow"]
    start = RFC3339Field.default_decoder(suggested["start"]).astimezone(timezone.utc)
    end = RFC3339Field.default_decoder(suggested["end"]).astimezone(timezone.utc)
    explanation = document.get("explanationURL")
    return Window(
        start,
        end,
        _retry_after(response.headers.get("Retry-After"), now),
        str(explanation) if explanation else None,
    )


def _retry_after(value: str | None, now: datetime) -> datetime | None:
    """An HTTP Retry-After (RFC 9110 §10.2.3): seconds, or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return now + timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _why(exc: BaseException, timeout: float) -> str:
    """One line for what went wrong. acme >= 4.1 chains explicitly (an ARIError from the
    request's error); acme 2.1 raises a ValueError while handling requests' exception, which
    is then only the context: the first requests error along either chain names the problem."""
    import requests

    chain: list[BaseException] = [exc]
    while len(chain) < 16:
        last = chain[-1]
        inner = last.__cause__ or (None if last.__suppress_context__ else last.__context__)
        if inner is None:
            break
        chain.append(inner)
    for error in chain:
        if isinstance(error, requests.exceptions.SSLError):
            return "its TLS certificate is not trusted (give the CA bundle that signs it)"
        if isinstance(error, requests.exceptions.Timeout):
            return f"no answer within {timeout:g} s"
        if isinstance(error, requests.exceptions.ConnectionError):
            return "cannot connect"
    cause = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    response = getattr(cause, "response", None)
    if response is None and cause.args and isinstance(cause.args[0], requests.Response):
        response = cause.args[0]
    if isinstance(response, requests.Response):
        return f"HTTP {response.status_code} for {response.url}"
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    if type(cause).__module__ == "acme.messages":  # an RFC 7807 problem document
        return f"the CA answered {text}"
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
