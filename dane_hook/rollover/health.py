"""What will break DANE delivery later, known today: the warnings monitoring is given.

Pure functions of certificates, published RRsets, the state and a clock; `status` joins them
per lineage and every output format (text, JSON, nagios, prometheus) shows the same warnings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from dane_hook.certs.chain import ServedChain, not_after, not_before
from dane_hook.certs.keys import PublicKey
from dane_hook.errors import Error
from dane_hook.rollover.decision import Publication, Published
from dane_hook.rollover.observe import Observation, host_of
from dane_hook.rollover.promotion import EXPIRY_LIMIT
from dane_hook.rollover.state import State
from dane_hook.tlsa.generate import key_record
from dane_hook.tlsa.matching import authenticate
from dane_hook.tlsa.record import TLSARecord, Usage

if TYPE_CHECKING:
    from dane_hook.catalog import Catalog
    from dane_hook.catalog.coverage import Coverage
    from dane_hook.rollover.lineages import LineageStatus
    from dane_hook.rollover.promotion import Context

SHORT_LIFETIME = timedelta(days=10)
"""certbot 5 (_internal/renewal.py, _default_renewal_time): a certificate valid for less than
10 days renews at half its lifetime, any other at two thirds, unless ARI or
renew_before_expiry says otherwise."""
DEFAULT_TIMER_PERIOD = timedelta(minutes=5)
"""The release timer's period as packaging/systemd installs it (OnUnitActiveSec=5min)."""
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
    leaves = (
        f"the renewal leaves {_span(window)} before the certificate (lifetime "
        f"{_span(lifetime)}) expires"
        if window > timedelta(0)
        else f"the renewal is due {renews:%Y-%m-%d %H:%M} UTC, after the certificate (lifetime "
        f"{_span(lifetime)}) expires {expires:%Y-%m-%d %H:%M} UTC"
    )
    return HealthWarning(
        WarningKind.LIFETIME_TOO_SHORT,
        lineage,
        None,
        f"2 x TTL ({2 * ttl} s) + the timer period ({_span(timer_period)}) is {_span(needed)}, "
        f"and {leaves}: lower the TLSA TTL, run the timer more often, renew earlier, or "
        "publish the next key (or 2 1 1 records) ahead",
    )


def held_expiry_warning(
    lineage: str,
    served: ServedChain | None,
    earliest: datetime | None,
    expiry_action: str,
    now: datetime,
    *,
    warn_within: timedelta = timedelta(days=14),
) -> HealthWarning | None:
    """A held chain whose served certificate expires before the held one may be promoted.

    Without an earliest time (nothing published authenticates the held chain yet) it warns
    once the served certificate is within `warn_within` of its expiry (expiry_warn_days)."""
    if served is None:
        return None
    expires = not_after(served.leaf)
    if earliest is not None and earliest < expires - EXPIRY_LIMIT:
        return None
    if earliest is None and expires - now > warn_within:
        return None
    # promotion.py applies expiry_action from EXPIRY_LIMIT before notAfter.
    limit = expires - EXPIRY_LIMIT
    then = (
        f"serves the held chain anyway from {limit:%Y-%m-%d %H:%M} UTC"
        if expiry_action == "serve"
        else "keeps holding it and the served certificate expires"
    )
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
    lineage: str, next_key: PublicKey | TLSARecord, published: Sequence[Published]
) -> list[HealthWarning]:
    """acme.sh current + next: the staged key's 3 1 1 must be published before the renewal
    that uses it, wherever DANE-EE records are in use."""
    record = (
        next_key if isinstance(next_key, TLSARecord) else key_record(next_key, Usage.DANE_EE, 1)
    )
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
    next_keys: Sequence[PublicKey | TLSARecord] = (),
    expected_ta: Sequence[TLSARecord] = (),
) -> list[TLSARecord]:
    """Records that authenticate none of the chains in use (served, held), are not the staged
    next key's and not a catalog intermediate the CA may issue from: safe to remove."""
    if published.status is not Publication.SECURE:
        return []
    keep = {
        key_record(k, Usage.DANE_EE, m) if not isinstance(k, TLSARecord) else k
        for k in next_keys
        for m in (0, 1, 2)
    }
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


# -- joining what `status` observed into each lineage's health -------------------------------


@dataclass(frozen=True)
class AcmeShDomain:
    """What acme.sh's own domain folder says about the next issuance (when its home is known)."""

    next_key: TLSARecord | None
    """The 3 1 1 of DOMAIN.key.next, when acme.sh forces a new key and one is staged."""
    next_renewal: datetime | None
    """Le_NextRenewTime of DOMAIN.conf: when acme.sh's cron renews."""


def acme_sh_domain(home: Path, name: str) -> AcmeShDomain | None:
    """The ECC folder (NAME_ecc), else the RSA one (NAME), of acme.sh's cert home; None when
    neither holds NAME.key. acme.sh 3.1.4 issue(): a new key is staged in
    "$CERT_KEY_PATH.next" only with Le_ForceNewDomainKey=1."""
    from dane_hook.sources import acmesh

    for folder in (home / f"{name}_ecc", home / name):
        domain = acmesh.DomainFolder(name, folder / f"{name}.key")
        if not domain.key.exists():
            continue
        try:
            conf = domain.read_conf()
            staged = (
                acmesh.staged_key(domain.next_key)
                if acmesh.is_set(conf.get("Le_ForceNewDomainKey"))
                else None
            )
        except Error:
            return AcmeShDomain(None, None)
        when = conf.get("Le_NextRenewTime", "")
        renews = datetime.fromtimestamp(int(when), timezone.utc) if when.isdigit() else None
        record = key_record(staged, Usage.DANE_EE, 1) if staged is not None else None
        return AcmeShDomain(record, renews)
    return None


@dataclass(frozen=True)
class Options:
    """What the warnings are measured against."""

    rrsig_days: int = DEFAULT_RRSIG_DAYS
    timer_period: timedelta = DEFAULT_TIMER_PERIOD
    acme_sh_home: Path | None = None
    """acme.sh's cert home (--home), to read the staged next key and Le_NextRenewTime."""


def assess(
    statuses: Sequence[LineageStatus],
    *,
    context: Context,
    state: State,
    options: Options = Options(),
    probes: Mapping[str, str] | None = None,
) -> Health:
    """Every lineage's health from what `status` found, with the warnings of every format.

    The endpoints are those `status` observed (LineageStatus.observations); the RRSIG
    expirations come with the answer (TLSAAnswer.rrsig_expires)."""
    now = context.now
    secure = [
        o.answer
        for entry in statuses
        for o in entry.observations
        if o.published.status is Publication.SECURE
    ]
    # The lookup keeps the RRSIG expirations of a secure TLSA answer: no second query.
    rrsigs: dict[str, datetime | None] = {a.target: a.rrsig_expires for a in secure}
    ledger_keys = _ledger_next_keys(context)
    catalog: list[Catalog] = []
    lineages = []
    for entry in statuses:
        domain = (
            acme_sh_domain(options.acme_sh_home, entry.lineage)
            if options.acme_sh_home is not None
            and entry.enrollment is not None
            and entry.enrollment.source != "certbot"
            else None
        )
        next_key = domain.next_key if domain is not None else None
        if next_key is None and entry.lineage in ledger_keys:
            next_key = ledger_keys[entry.lineage]
        lineages.append(
            _lineage(
                entry,
                entry.observations,
                rrsigs,
                next_key,
                domain.next_renewal if domain is not None else None,
                catalog,
                context,
                options,
                probes or {},
            )
        )
    return Health(now, tuple(lineages), state.last_success)


def _ledger_next_keys(context: Context) -> dict[str, TLSARecord]:
    """The staged next keys recorded at acme.sh's reload (rollover/ledger.py next_keys)."""
    from dane_hook.rollover.ledger import load_ledger

    try:
        ledger = load_ledger(context.config.state_dir)
    except Error:
        return {}
    found = {}
    for name, text in ledger.next_keys.items():
        try:
            found[name] = TLSARecord.from_text(text)
        except (Error, ValueError):
            continue
    return found


def _candidate(entry: LineageStatus, context: Context) -> ServedChain | None:
    if entry.held is None or "error" in entry.held:
        return None
    from dane_hook.rollover.promotion import chain_of, read_candidate

    try:
        files = read_candidate(context.config, entry.lineage, str(entry.held["version"]))
        return chain_of(files, f"held {entry.lineage}")
    except Error:
        return None


def _expected_ta(
    served: ServedChain, found: Sequence[Observation], catalog: list[Catalog], context: Context
) -> tuple[dict[str, Coverage], dict[str, list[TLSARecord]]]:
    """Catalog coverage of each endpoint that publishes DANE-TA records, and the records of
    the intermediates the CA may issue from (in use, never stale)."""
    if not any(
        r.usage == Usage.DANE_TA
        for o in found
        if o.published.status is Publication.SECURE
        for r in o.published.records
    ):
        return {}, {}
    now = context.now
    from dane_hook.catalog import load_catalog
    from dane_hook.rollover.assess import coverage_by_endpoint

    if not catalog:
        # Loading the catalog costs more than a lookup: once per run, and only when needed.
        catalog.append(load_catalog(context.config.state_dir, now))
    coverage = coverage_by_endpoint(served, found, catalog[0], now)
    expected: dict[str, list[TLSARecord]] = {}
    for endpoint, cover in coverage.items():
        if cover.issuers.checkable:
            expected[endpoint] = [
                record
                for key in cover.issuers.expected
                for p in cover.in_use
                for record in key.records(*p)
            ]
    return coverage, expected


def _lineage(
    entry: LineageStatus,
    found: Sequence[Observation],
    rrsigs: Mapping[str, datetime | None],
    next_key: TLSARecord | None,
    acme_sh_renewal: datetime | None,
    catalog: list[Catalog],
    context: Context,
    options: Options,
    probes: Mapping[str, str],
) -> LineageHealth:
    name, now, config = entry.lineage, context.now, context.config
    served = entry.served
    held_chain = _candidate(entry, context)
    published = [o.published for o in found]
    hosts = {o.endpoint: host_of(o.endpoint) for o in found}
    warnings: list[HealthWarning] = []
    coverage: dict[str, Coverage] = {}
    expected: dict[str, list[TLSARecord]] = {}
    if served is not None:
        coverage, expected = _expected_ta(served, found, catalog, context)
    # Stale: matches nothing in use, the served chain, the held one, the staged next key and
    # the catalog's intermediates of the CA (issue 15 item 8b counts all of them as in use).
    in_use = [c for c in (served, held_chain) if c is not None]
    stale: dict[str, list[TLSARecord]] = {}
    if in_use:
        for p in published:
            found_stale = stale_records(
                p,
                in_use,
                host=hosts.get(p.endpoint),
                now=now,
                next_keys=[next_key] if next_key is not None else (),
                expected_ta=expected.get(p.endpoint, ()),
            )
            if found_stale:
                stale[p.endpoint] = found_stale
    if next_key is not None:
        warnings += next_key_warnings(name, next_key, published)
    warnings += stale_warnings(name, stale)
    for o in found:
        expiry = rrsigs.get(o.answer.target)
        rrsig = rrsig_warning(name, o.endpoint, expiry, now, options.rrsig_days)
        if rrsig is not None:
            warnings.append(rrsig)
    secure_ttls = [p.ttl for p in published if p.status is Publication.SECURE and p.records]
    if served is not None and secure_ttls:
        renewal = entry.renewal
        renews = acme_sh_renewal or (renewal.window_start if renewal is not None else None)
        lifetime = lifetime_warning(
            name, served, max(secure_ttls), timer_period=options.timer_period, renewal_time=renews
        )
        if lifetime is not None:
            warnings.append(lifetime)
    held = entry.held
    if held is not None:
        earliest = held.get("earliest")
        limit = held_expiry_warning(
            name,
            served,
            datetime.fromisoformat(earliest) if earliest else None,
            config.expiry_action,
            now,
            warn_within=timedelta(days=config.expiry_warn_days),
        )
        if limit is not None:
            warnings.append(limit)
    for endpoint, cover in coverage.items():
        warnings += [HealthWarning(WarningKind.CATALOG, name, endpoint, n) for n in cover.notes()]
    if entry.renewal is not None and entry.renewal.warning:
        warnings.append(
            HealthWarning(WarningKind.RENEWAL_WINDOW, name, None, entry.renewal.warning)
        )
    covered = {o.endpoint: o.covered for o in entry.renewal.outlooks} if entry.renewal else {}
    if next_key is not None:
        for p in published:
            if p.status is Publication.SECURE:
                covered.setdefault(p.endpoint, next_key in p.records)
    by_endpoint = {o.endpoint: o for o in found}
    endpoints = []
    for d in entry.decision.endpoints if entry.decision is not None else ():
        seen = by_endpoint.get(d.endpoint)
        endpoints.append(
            EndpointHealth(
                d.endpoint,
                d.verdict.value,
                covered.get(d.endpoint),
                len(stale.get(d.endpoint, ())),
                rrsigs.get(seen.answer.target) if seen is not None else None,
                probes.get(d.endpoint),
            )
        )
    decision = entry.decision
    since = datetime.fromisoformat(str(held["since"])) if held is not None else None
    return LineageHealth(
        name,
        decision.verdict.value if decision is not None else None,
        held is not None and decision is not None,
        not_after(served.leaf) if served is not None else None,
        since,
        tuple(endpoints),
        tuple(warnings),
    )
