"""Do the published 2 x x records cover every intermediate the CA may issue the next
certificate from? A pure function of the chain, the catalog and the published RRset.

A CA keeps separate intermediates per key type and picks among its active ones at random;
it may switch to a backup one without warning. A DANE-TA record pins one intermediate key,
so only records for every active and backup intermediate of the leaf's key type keep the next
renewal from breaking delivery. Records that pin only retired intermediates can go once no
served chain is issued by them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from dane_hook.catalog.model import (
    CAKey,
    Catalog,
    KeyFamily,
    Role,
    Status,
    common_name,
    family_of,
    key_description,
)
from dane_hook.certs.chain import ServedChain, issues
from dane_hook.tlsa.record import TLSARecord, Usage, unusable_reason

Params = tuple[int, int, int]


@dataclass(frozen=True)
class IssuerSet:
    """The intermediates a chain's CA may issue the next certificate of its key type from."""

    chain_issuer: x509.Certificate | None
    """The intermediate that issued the chain's leaf."""
    issuer: CAKey | None
    """That intermediate's key in the catalog, if it is there."""
    family: KeyFamily | None
    """The leaf's key type family (RSA, ECDSA)."""
    expected: tuple[CAKey, ...] = ()
    """Active and backup intermediates of the CA for that family, the chain's issuer first."""
    fallback: str | None = None
    """Why only the chain's own issuer can be checked (a private CA, a stale catalog, ...)."""
    above: tuple[x509.Certificate, ...] = ()
    """The chain's certificates above its issuer (a root or a cross-sign, when served)."""

    @property
    def ca(self) -> str | None:
        return self.issuer.ca if self.issuer is not None else None

    @property
    def checkable(self) -> bool:
        return self.fallback is None

    def describe(self) -> str:
        """`the intermediates letsencrypt may issue an ECDSA certificate from`."""
        family = self.family.value if self.family else "such a"
        return f"the intermediates {self.ca} may issue an {family} certificate from"


def issuers_for(chain: ServedChain, catalog: Catalog, now: datetime) -> IssuerSet:
    """Find the CA by the chain issuer's key, then its intermediates for the leaf's key type."""
    family = family_of(key_description(chain.leaf))
    if not chain.issuers:
        return IssuerSet(
            None,
            None,
            family,
            fallback="the chain holds no issuer certificate (give the full chain): coverage "
            "of the CA's intermediates cannot be checked",
        )
    own = chain.issuers[0]
    issuer = catalog.key_of(own)
    if issuer is None:
        above = next((k for c in chain.issuers[1:] if (k := catalog.key_of(c))), None)
        if above is not None:
            why = (
                f"the issuer {common_name(own)} is not in the CA catalog, though its CA "
                f"{above.ca} is (the catalog may be out of date: 'dane-hook catalog add'); "
                "coverage of the CA's other intermediates cannot be checked"
            )
        else:
            why = (
                f"the issuer {common_name(own)} is not in the CA catalog (a private CA?): "
                "coverage of the CA's other intermediates cannot be checked"
            )
        return IssuerSet(own, None, family, fallback=why)
    if issuer.role is Role.ROOT:
        return IssuerSet(
            own,
            issuer,
            family,
            fallback=f"the leaf is issued by the root {issuer.name} itself: coverage of the "
            "CA's intermediates cannot be checked",
        )
    if family is None:
        return IssuerSet(
            own,
            issuer,
            None,
            fallback=f"the leaf's key type ({key_description(chain.leaf)}) has no intermediates "
            "in the CA catalog: coverage of the CA's other intermediates cannot be checked",
        )
    expected = catalog.intermediates(issuer.ca, family, now=now)
    if not expected:
        return IssuerSet(
            own,
            issuer,
            family,
            fallback=f"the CA catalog has no unexpired {family.value} intermediate of "
            f"{issuer.ca} marked active or backup (mark them with 'dane-hook catalog add "
            "--status'): coverage of the CA's other intermediates cannot be checked",
        )
    if issuer in expected:
        expected = (issuer, *(k for k in expected if k != issuer))
    return IssuerSet(own, issuer, family, expected, above=chain.issuers[1:])


@dataclass(frozen=True)
class Missing:
    """An intermediate the CA may issue from that no record of a combination in use pins."""

    key: CAKey
    params: Params
    records: tuple[TLSARecord, ...]
    """What to publish for it: one record (selector 1), or one per certificate (selector 0)."""

    def message(self) -> str:
        u, s, m = self.params
        if self.key.status is Status.BACKUP:
            risk = "may issue your next certificate without warning"
        else:
            risk = "may issue your next certificate"
        return (
            f"{self.key.name} is {_article(self.key.status)} {self.key.status.value} "
            f"intermediate and {risk}: publish its {u} {s} {m} record"
        )


@dataclass(frozen=True)
class RetiredRecord:
    """A published DANE-TA record that pins only retired intermediates."""

    record: TLSARecord
    keys: tuple[CAKey, ...]
    serves_chain: bool
    """The chain checked is issued by one of them: the record stays while it is served."""

    def message(self) -> str:
        names = ", ".join(k.name for k in self.keys)
        them = "it" if len(self.keys) == 1 else "any of them"
        note = " (this chain is)" if self.serves_chain else ""
        roles = {k.role for k in self.keys}
        kind = "root" if roles == {Role.ROOT} else "intermediate"
        if len(roles) > 1:
            kind = "CA certificate"
        return (
            f"{self.record.short()} pins only the retired {kind}{_plural(self.keys)} "
            f"{names}: remove it once no served chain is issued by {them}{note}"
        )


@dataclass(frozen=True)
class Coverage:
    """How an endpoint's DANE-TA records cover the intermediates of a chain's CA."""

    endpoint: str
    issuers: IssuerSet
    in_use: tuple[Params, ...]
    """The DANE-TA (usage, selector, matching type) combinations published and usable."""
    missing: tuple[Missing, ...] = ()
    retired: tuple[RetiredRecord, ...] = ()

    @property
    def applies(self) -> bool:
        """Only an endpoint that publishes DANE-TA records depends on the intermediates."""
        return bool(self.in_use)

    @property
    def covered(self) -> bool:
        return self.applies and self.issuers.checkable and not self.missing

    @property
    def to_add(self) -> tuple[TLSARecord, ...]:
        return tuple(dict.fromkeys(r for m in self.missing for r in m.records))

    @property
    def missing_keys(self) -> tuple[CAKey, ...]:
        return tuple(dict.fromkeys(m.key for m in self.missing))

    def summary(self) -> str:
        """One line: covered, not covered (and what to add), or why it cannot be checked."""
        if not self.applies:
            return "no DANE-TA record is published: the CA's intermediates do not matter here"
        if not self.issuers.checkable:
            return str(self.issuers.fallback)
        combos = ", ".join(" ".join(map(str, p)) for p in self.in_use)
        if self.covered:
            names = ", ".join(k.name for k in self.issuers.expected)
            return (
                f"the renewal is covered: the {combos} records pin every one of "
                f"{self.issuers.describe()} ({names})"
            )
        names = ", ".join(k.name for k in self.missing_keys)
        return f"the renewal is NOT covered: add the {combos} records of {names}"

    def notes(self) -> list[str]:
        """One line per missing intermediate and per record that pins only retired ones."""
        if not self.applies:
            return []
        return [m.message() for m in self.missing] + [r.message() for r in self.retired]


def coverage_of(
    endpoint: str,
    issuers: IssuerSet,
    records: Sequence[TLSARecord],
    catalog: Catalog,
) -> Coverage:
    """Which of the expected intermediates each DANE-TA combination in use misses, and which
    published DANE-TA records pin only retired intermediates."""
    usable = [r for r in records if unusable_reason(r) is None and r.usage == Usage.DANE_TA]
    in_use = tuple(sorted({r.params for r in usable}, key=_params_order))
    # A record that pins a root the chain serves covers every intermediate that root issued,
    # as long as the next chain serves it too.
    roots = [
        k
        for c in issuers.above
        if (k := catalog.key_of(c)) is not None and k.role is Role.ROOT and k.ca == issuers.ca
    ]
    missing: list[Missing] = []
    if issuers.checkable:
        for params in in_use:
            pins = [r for r in usable if r.params == params]
            pinned_roots = [k for k in roots if any(k.matches(r) for r in pins)]
            for key in issuers.expected:
                if any(key.matches(r) for r in pins):
                    continue
                if any(_issued_by(key, root) for root in pinned_roots):
                    continue
                missing.append(Missing(key, params, tuple(key.records(*params))))
    retired: list[RetiredRecord] = []
    for record in dict.fromkeys(usable):
        keys = catalog.matching(record)
        if keys and all(k.status is Status.RETIRED for k in keys):
            serves = issuers.issuer is not None and issuers.issuer in keys
            retired.append(RetiredRecord(record, keys, serves))
    return Coverage(endpoint, issuers, in_use, tuple(missing), tuple(retired))


def _issued_by(key: CAKey, root: CAKey) -> bool:
    return any(
        issues(r.certificate, e.certificate) for e in key.certificates for r in root.certificates
    )


def _params_order(params: Params) -> tuple[int, int, int]:
    # 2 1 1 first: the combination dane-hook recommends, then the others as numbers sort.
    return (0 if params == (2, 1, 1) else 1, *params[1:])


def _article(status: Status) -> str:
    return "an" if status.value[0] in "aeiou" else "a"


def _plural(items: Sequence[object]) -> str:
    return "" if len(items) == 1 else "s"
