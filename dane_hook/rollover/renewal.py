"""Will the next renewal be covered by what is published? (pure; for `pre` and `status`)

Under certbot's default (no reuse_key) the next key is unknown until issuance, so only DANE-TA
records can cover it, and only if they pin every intermediate the CA may issue from. With
reuse_key the key stays, and a DANE-EE record of it keeps authenticating the next chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dane_hook.catalog.coverage import Coverage
from dane_hook.certs.chain import ServedChain
from dane_hook.rollover.decision import Publication, Published
from dane_hook.tlsa.generate import certificate_record
from dane_hook.tlsa.matching import authenticate
from dane_hook.tlsa.record import TLSARecord, Usage

ARI_MARGIN = timedelta(hours=1)
"""Slack beyond 2 x TTL before the CA's renewal window opens."""


@dataclass(frozen=True)
class EndpointOutlook:
    endpoint: str
    covered: bool
    reason: str
    add: tuple[TLSARecord, ...] = ()
    """DANE-TA records that would cover the next chain."""
    ttl: int = 0


def outlook(
    served: ServedChain,
    published: Sequence[Published],
    coverage: Mapping[str, Coverage],
    *,
    reuse_key: bool,
    hosts: Mapping[str, str],
    now: datetime,
) -> list[EndpointOutlook]:
    """Per secure endpoint: is the next renewal covered, and what would cover it."""
    result = []
    for p in published:
        if p.status is not Publication.SECURE:
            continue
        host = hosts.get(p.endpoint)

        def authenticates(record: TLSARecord, host: str | None = host) -> bool:
            return authenticate(served, [record], host=host, now=now).authenticated

        ee = any(r.usage == Usage.DANE_EE and authenticates(r) for r in p.records)
        ta = any(r.usage == Usage.DANE_TA and authenticates(r) for r in p.records)
        cover = coverage.get(p.endpoint)
        if reuse_key and ee:
            result.append(
                EndpointOutlook(
                    p.endpoint, True, "the key is reused: its 3 1 1 stays valid", ttl=p.ttl
                )
            )
            continue
        if cover is not None and cover.applies and cover.issuers.checkable:
            if cover.covered:
                result.append(EndpointOutlook(p.endpoint, True, cover.summary(), ttl=p.ttl))
            else:
                result.append(
                    EndpointOutlook(p.endpoint, False, cover.summary(), cover.to_add, p.ttl)
                )
            continue
        if ta:
            # The CA's other intermediates cannot be checked: the chain's own issuer is pinned.
            why = cover.summary() if cover is not None and cover.applies else ""
            result.append(
                EndpointOutlook(
                    p.endpoint,
                    True,
                    "covered while the CA keeps the same intermediate"
                    + (f" ({why})" if why else ""),
                    ttl=p.ttl,
                )
            )
            continue
        add: tuple[TLSARecord, ...] = ()
        if served.issuers:
            add = (certificate_record(served.issuers[0], 2, 1, 1),)
        why = (
            "the next key is unknown until issuance (reuse_key is off), so only issuer "
            "(2 1 1) records can cover the renewal, and none authenticates this chain"
            if not reuse_key
            else "no published record of the reused key authenticates this chain"
        )
        result.append(EndpointOutlook(p.endpoint, False, why, add, p.ttl))
    return result


def ari_warning(
    window_start: datetime | None, outlooks: Sequence[EndpointOutlook], now: datetime
) -> str | None:
    """A warning when the CA's renewal window opens before uncovered records could mature."""
    if window_start is None:
        return None
    uncovered = [o for o in outlooks if not o.covered]
    if not uncovered:
        return None
    longest = max(o.ttl for o in uncovered)
    deadline = now + timedelta(seconds=2 * longest) + ARI_MARGIN
    if window_start > deadline:
        return None
    names = ", ".join(o.endpoint for o in uncovered)
    return (
        f"the CA's renewal window opens {window_start:%Y-%m-%d %H:%M} UTC, within 2 x TTL "
        f"(+{int(ARI_MARGIN.total_seconds() // 3600)} h) of now, and the next chain is not "
        f"covered at {names}: publish the records now"
    )
