"""What will break DANE delivery later, known today: the warnings monitoring is given.

Pure functions of certificates, published RRsets, the state and a clock; `status` joins them
per lineage and every output format (text, JSON, nagios, prometheus) shows the same warnings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from dane_hook.certs.chain import ServedChain, not_after, not_before
from dane_hook.certs.keys import PublicKey
from dane_hook.rollover.decision import Publication, Published
from dane_hook.tlsa.generate import key_record
from dane_hook.tlsa.matching import authenticate
from dane_hook.tlsa.record import TLSARecord, Usage

SHORT_LIFETIME = timedelta(days=10)
"""certbot 5 (_internal/renewal.py, _default_renewal_time): a certificate valid for less than
10 days renews at half its lifetime, any other at two thirds, unless ARI or
renew_before_expiry says otherwise."""
DEFAULT_TIMER_PERIOD = timedelta(hours=1)
"""The release timer's period as packaging/systemd installs it."""
DEFAULT_RRSIG_DAYS = 7


class WarningKind(str, Enum):
    NEXT_KEY_UNPUBLISHED = "next-key-unpublished"
    STALE_RECORD = "stale-record"
    RRSIG_EXPIRING = "rrsig-expiring"
    LIFETIME_TOO_SHORT = "lifetime-too-short"
    HELD_EXPIRES_FIRST = "held-expires-first"
    CATALOG = "catalog"
    RENEWAL_WINDOW = "renewal-window"


@dataclass(frozen=True)
class HealthWarning:
    kind: WarningKind
    lineage: str
    endpoint: str | None
    message: str

    def to_json(self) -> dict[str, str | None]:
        return {
            "kind": self.kind.value,
            "lineage": self.lineage,
            "endpoint": self.endpoint,
            "message": self.message,
        }


def certbot_renewal_time(
    chain: ServedChain,
    *,
    renew_before_expiry: timedelta | None = None,
    window_start: datetime | None = None,
) -> datetime:
    """When certbot renews this certificate (certbot 5, _internal/renewal.py should_autorenew):
    the ARI window's start, else renew_before_expiry before notAfter, else a fraction of the
    lifetime."""
    start, end = not_before(chain.leaf), not_after(chain.leaf)
    if window_start is not None:
        return window_start
    if renew_before_expiry is not None:
        return end - renew_before_expiry
    lifetime = end - start
    return start + (lifetime / 2 if lifetime < SHORT_LIFETIME else lifetime * 2 / 3)


def lifetime_warning(
    lineage: str,
    served: ServedChain,
    ttl: int,
    *,
    timer_period: timedelta = DEFAULT_TIMER_PERIOD,
    renewal_time: datetime | None = None,
) -> HealthWarning | None:
    """A renewal with a new key waits 2 x TTL after its records are published (RFC 7671 §8.1),
    plus up to one timer period until `release` sees them. When that takes half or more of the
    time between the renewal and the served certificate's expiry, one failed renewal attempt or
    one slow DNS update lets the certificate expire while the new one is held."""
    renews = renewal_time or certbot_renewal_time(served)
    expires = not_after(served.leaf)
    window = expires - renews
    needed = timedelta(seconds=2 * ttl) + timer_period
    if window > 2 * needed:
        return None
    lifetime = expires - not_before(served.leaf)
    return HealthWarning(
        WarningKind.LIFETIME_TOO_SHORT,
        lineage,
        None,
        f"2 x TTL ({2 * ttl} s) + the timer period ({_span(timer_period)}) is {_span(needed)}, "
        f"and the renewal leaves {_span(window)} before the certificate (lifetime "
        f"{_span(lifetime)}) expires: lower the TLSA TTL, run the timer more often, or publish "
        "the next key (or 2 1 1 records) ahead",
    )


def held_expiry_warning(
    lineage: str,
    served: ServedChain | None,
    earliest: datetime | None,
    expiry_action: str,
    now: datetime,
) -> HealthWarning | None:
    """A held chain whose served certificate expires before the held one may be promoted."""
    if served is None:
        return None
    expires = not_after(served.leaf)
    if earliest is not None and earliest < expires:
        return None
    then = "serves the held chain anyway" if expiry_action == "serve" else "keeps holding it"
    promotable = (
        f"it may be promoted from {earliest:%Y-%m-%d %H:%M} UTC"
        if earliest is not None
        else "nothing published authenticates it yet"
    )
    state = "expired" if expires <= now else "expires"
    return HealthWarning(
        WarningKind.HELD_EXPIRES_FIRST,
        lineage,
        None,
        f"the served certificate {state} {expires:%Y-%m-%d %H:%M} UTC and the held chain "
        f"cannot be served before: {promotable}; at the limit dane-hook {then} "
        f"(expiry_action = {expiry_action})",
    )


def next_key_warnings(
    lineage: str, next_key: PublicKey, published: Sequence[Published]
) -> list[HealthWarning]:
    """acme.sh current + next: the staged key's 3 1 1 must be published before the renewal
    that uses it, wherever DANE-EE records are in use."""
    record = key_record(next_key, Usage.DANE_EE, 1)
    found = []
    for p in published:
        if p.status is not Publication.SECURE:
            continue
        if not any(r.usage == Usage.DANE_EE for r in p.records) or record in p.records:
            continue
        found.append(
            HealthWarning(
                WarningKind.NEXT_KEY_UNPUBLISHED,
                lineage,
                p.endpoint,
                f"the staged next key's {record.to_text()} is not published: the renewal "
                "that uses it will be held (or refused by the pre-hook)",
            )
        )
    return found


def stale_records(
    published: Published,
    in_use: Sequence[ServedChain],
    *,
    host: str | None,
    now: datetime,
    next_keys: Sequence[PublicKey] = (),
    expected_ta: Sequence[TLSARecord] = (),
) -> list[TLSARecord]:
    """Records that authenticate none of the chains in use (served, held), are not the staged
    next key's and not a catalog intermediate the CA may issue from: safe to remove."""
    if published.status is not Publication.SECURE:
        return []
    keep = {key_record(k, Usage.DANE_EE, m) for k in next_keys for m in (0, 1, 2)}
    keep.update(expected_ta)
    stale = []
    for record in published.records:
        if record in keep:
            continue
        if any(authenticate(c, [record], host=host, now=now).authenticated for c in in_use):
            continue
        stale.append(record)
    return stale


def stale_warnings(lineage: str, stale: Mapping[str, Sequence[TLSARecord]]) -> list[HealthWarning]:
    return [
        HealthWarning(
            WarningKind.STALE_RECORD,
            lineage,
            endpoint,
            f"{record.to_text()} matches nothing in use (served, held, next key, catalog): "
            "remove it",
        )
        for endpoint, records in stale.items()
        for record in records
    ]


def rrsig_warning(
    lineage: str, endpoint: str, expires: datetime | None, now: datetime, days: int
) -> HealthWarning | None:
    """A zone whose signing stopped breaks DANE when its signatures lapse: the TLSA RRset
    turns bogus and DANE senders defer all mail (RFC 7672 §2.2)."""
    if expires is None or expires - now > timedelta(days=days):
        return None
    left = "expired" if expires <= now else f"expires in {_span(expires - now)}"
    return HealthWarning(
        WarningKind.RRSIG_EXPIRING,
        lineage,
        endpoint,
        f"the RRSIG over the TLSA RRset {left} ({expires:%Y-%m-%d %H:%M} UTC): check that the "
        "zone is still being signed",
    )


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if abs(seconds) >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if abs(seconds) >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if abs(seconds) >= 120:
        return f"{seconds // 60} min"
    return f"{seconds} s"


@dataclass(frozen=True)
class EndpointHealth:
    endpoint: str
    verdict: str
    next_renewal_covered: bool | None = None
    """None where the next renewal is not judged (acme.sh, no served chain, not secure)."""
    stale: int = 0
    rrsig_expires: datetime | None = None
    """The earliest RRSIG expiration over the endpoint's TLSA RRset."""
    probe: str | None = None
    """The last live probe's verdict, once one ran."""


@dataclass(frozen=True)
class LineageHealth:
    lineage: str
    verdict: str | None
    """The verdict of what is checked (held candidate, else served chain); None: nothing."""
    held: bool
    """The verdict is the held candidate's: the served chain stays as it was."""
    served_not_after: datetime | None
    held_since: datetime | None
    endpoints: tuple[EndpointHealth, ...]
    warnings: tuple[HealthWarning, ...]


@dataclass(frozen=True)
class Health:
    now: datetime
    lineages: tuple[LineageHealth, ...]
    last_success: datetime | None
    """When a run last observed every lineage without a lookup failure."""
