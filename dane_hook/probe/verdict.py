"""Would a DANE sender deliver to this address? The presented chain against the published RRset.

The chain is the one the server sent, leaf first (RFC 8446 §4.4.2); the TLSA RRset is the one
the validating resolver gives (dns.validation.lookup_tlsa); the judgement is the matcher that
`check` uses (tlsa.matching.authenticate), so the probe and `check` cannot disagree about the
same chain. What the sender then does follows RFC 7672 §2.2: with usable, secure records TLS is
mandatory and must authenticate; bogus records defer delivery; insecure or absent records leave
opportunistic TLS.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from cryptography import x509

from dane_hook.certs.chain import build_chain
from dane_hook.certs.keys import public_key_of
from dane_hook.dns.exchange import DEFAULT_TIMEOUT, DEFAULT_TRIES, Resolver
from dane_hook.dns.validation import Status, TLSAAnswer, lookup_tlsa
from dane_hook.errors import Error
from dane_hook.probe.run import MAX_WORKERS, AddressResult
from dane_hook.probe.wire import ProbeStatus
from dane_hook.tlsa.matching import MatchResult, authenticate


class Verdict(str, Enum):
    """What a DANE-validating sender makes of one address."""

    AUTHENTICATED = "authenticated"
    """Secure, usable records, and the presented chain matches: delivery goes ahead."""
    NOT_AUTHENTICATED = "not-authenticated"
    """Secure, usable records, and the presented chain matches none: the sender defers."""
    NO_CHAIN = "no-chain"
    """Secure, usable records, and no TLS chain to judge (no STARTTLS, handshake failed,
    no connection): the sender does not deliver here (RFC 7672 §2.2, TLS is mandatory)."""
    UNUSABLE = "unusable"
    """Secure records, none usable: the sender requires TLS but does not authenticate."""
    NO_DANE = "no-dane"
    """A validated denial: no TLSA records; opportunistic TLS."""
    INSECURE = "insecure"
    """Records, MX or addresses not validated: the sender does not use DANE here."""
    BOGUS = "bogus"
    """The TLSA answer fails validation: the sender defers delivery."""
    UNKNOWN = "unknown"
    """The TLSA lookup got no answer: nothing can be said."""


_REFUSES = {
    Verdict.AUTHENTICATED: False,
    Verdict.NOT_AUTHENTICATED: True,
    Verdict.NO_CHAIN: True,
    Verdict.BOGUS: True,
    Verdict.NO_DANE: False,
    Verdict.INSECURE: False,
}


@dataclass(frozen=True)
class AddressVerdict:
    """One address: what it presented and what a DANE sender decides about it."""

    result: AddressResult
    verdict: Verdict
    reason: str
    """One line: the verdict and why."""
    answer: TLSAAnswer | None
    """The TLSA lookup of `result.tlsa_owner`; None when DANE does not apply (insecure MX or
    address records, RFC 7672 §2.2.1 and §2.2.2)."""
    match: MatchResult | None = None
    """The matcher's verdict on the presented chain; None without a chain or usable records."""

    @property
    def matched(self) -> str | None:
        """The record that authenticated the chain, in presentation form."""
        if self.match is None or self.match.by is None:
            return None
        return self.match.by.to_text()

    @property
    def depth(self) -> int | None:
        """Where it matched: 0 the leaf, 1 its issuer, ..."""
        return self.match.depth if self.match is not None else None

    @property
    def sender_refuses(self) -> bool | None:
        """True when a DANE sender would not deliver to this address now; None: unknown.

        UNUSABLE refuses only when TLS itself failed (mandatory TLS, RFC 7672 §2.2)."""
        if self.verdict is Verdict.UNUSABLE:
            return self.result.status is not ProbeStatus.OK
        return _REFUSES.get(self.verdict)

    def line(self) -> str:
        return f"{self.result.where} {self.verdict.value}: {self.reason}"


def presented_chain(result: AddressResult) -> tuple[x509.Certificate, ...]:
    """The presented certificates, parsed; those that do not parse are left out."""
    parsed = []
    for der in result.chain:
        try:
            parsed.append(x509.load_der_x509_certificate(der))
        except ValueError:
            continue
    return tuple(parsed)


def judge(
    result: AddressResult, answer: TLSAAnswer | None, *, now: datetime | None = None
) -> AddressVerdict:
    """The verdict on one probed address, given the TLSA answer of its endpoint."""
    if answer is None or not result.secure:
        return AddressVerdict(
            result,
            Verdict.INSECURE,
            "the MX or address records are not DNSSEC-validated: DANE does not apply "
            "(RFC 7672 §2.2.1, §2.2.2)",
            answer,
        )
    if answer.status is Status.BOGUS:
        return AddressVerdict(result, Verdict.BOGUS, f"{answer.reason}; senders defer", answer)
    if answer.status in (Status.TIMEOUT, Status.FAILED):
        return AddressVerdict(result, Verdict.UNKNOWN, answer.reason, answer)
    if answer.status is Status.INSECURE:
        return AddressVerdict(result, Verdict.INSECURE, answer.reason, answer)
    if answer.status is Status.NO_DANE:
        return AddressVerdict(result, Verdict.NO_DANE, answer.reason, answer)
    certificates = presented_chain(result)
    if result.status is not ProbeStatus.OK or not certificates:
        return AddressVerdict(
            result,
            Verdict.NO_CHAIN,
            f"TLSA published, but {result.status.value}: {result.reason}",
            answer,
        )
    leaf = certificates[0]
    # The leaf is the first certificate sent (RFC 8446 §4.4.2); choosing it by its key keeps
    # build_chain from taking another non-CA certificate of the list for it.
    try:
        chain = build_chain(certificates, public_key_of(leaf), now=now, source=result.where)
    except Error as exc:
        return AddressVerdict(result, Verdict.NOT_AUTHENTICATED, exc.diagnostics(), answer)
    match = authenticate(chain, answer.records, host=result.host, now=now)
    if match.authenticated:
        where = "the leaf" if match.depth == 0 else f"depth {match.depth}"
        by = match.by.to_text() if match.by is not None else "?"
        return AddressVerdict(result, Verdict.AUTHENTICATED, f"{by} matches {where}", answer, match)
    if not match.usable:
        return AddressVerdict(
            result,
            Verdict.UNUSABLE,
            f"{match.reason}: senders use TLS without authentication",
            answer,
            match,
        )
    return AddressVerdict(result, Verdict.NOT_AUTHENTICATED, match.reason, answer, match)


def judge_all(
    results: Sequence[AddressResult],
    resolver: Resolver,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int = DEFAULT_TRIES,
    now: datetime | None = None,
) -> tuple[AddressVerdict, ...]:
    """Every result judged; each TLSA owner is looked up once, the lookups side by side."""
    owners = list(dict.fromkeys(r.tlsa_owner for r in results if r.secure))
    answers: dict[str, TLSAAnswer] = {}
    if owners:
        workers = max(1, min(MAX_WORKERS, len(owners)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = pool.map(
                lambda owner: lookup_tlsa(owner, resolver, timeout=timeout, tries=tries), owners
            )
            answers = dict(zip(owners, found, strict=True))
    return tuple(judge(r, answers.get(r.tlsa_owner), now=now) for r in results)
