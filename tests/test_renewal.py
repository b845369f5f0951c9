"""Will the next renewal be covered? The outlook behind `pre` and `status` (pure)."""

from __future__ import annotations

from datetime import timedelta

from dane_hook.catalog import load_catalog
from dane_hook.catalog.coverage import coverage_of, issuers_for
from dane_hook.certs.chain import build_chain
from dane_hook.rollover.decision import Publication, Published
from dane_hook.rollover.renewal import ari_warning, outlook
from dane_hook.tlsa.generate import certificate_record
from tests import pki

NOW = pki.NOW
ROOT = pki.root("renewal root")
CA = pki.intermediate("renewal CA", ROOT)
LEAF = pki.leaf(CA, label="renewal leaf")
CHAIN = build_chain([LEAF.certificate, CA.certificate], now=NOW)
ENDPOINT = "_25._tcp.mx.example.test."
HOSTS = {ENDPOINT: "mx.example.test"}
EE = certificate_record(LEAF.certificate, 3, 1, 1)
TA = certificate_record(CA.certificate, 2, 1, 1)


def look(records: tuple[object, ...], reuse_key: bool) -> tuple[bool, str, tuple[object, ...]]:
    published = Published(ENDPOINT, Publication.SECURE, records, 300)  # type: ignore[arg-type]
    catalog = load_catalog(None, NOW)
    coverage = {
        ENDPOINT: coverage_of(
            ENDPOINT, issuers_for(CHAIN, catalog, NOW), published.records, catalog
        )
    }
    (o,) = outlook(CHAIN, [published], coverage, reuse_key=reuse_key, hosts=HOSTS, now=NOW)
    return o.covered, o.reason, o.add


def test_new_key_needs_an_issuer_record() -> None:
    covered, reason, add = look((EE,), reuse_key=False)
    assert not covered and "reuse_key is off" in reason and add == (TA,)


def test_reused_key_is_covered_by_its_311() -> None:
    covered, reason, _ = look((EE,), reuse_key=True)
    assert covered and "reused" in reason


def test_private_ca_pinned_issuer_covers_while_it_stays() -> None:
    covered, reason, _ = look((EE, TA), reuse_key=False)
    assert covered and "same intermediate" in reason


def test_ari_warning_only_when_the_window_is_near_and_uncovered() -> None:
    published = Published(ENDPOINT, Publication.SECURE, (EE,), 3600)
    (o,) = outlook(CHAIN, [published], {}, reuse_key=False, hosts=HOSTS, now=NOW)
    soon = NOW + timedelta(hours=2)
    later = NOW + timedelta(days=3)
    warning = ari_warning(soon, [o], NOW)
    assert warning is not None and ENDPOINT in warning
    assert ari_warning(later, [o], NOW) is None
    assert ari_warning(None, [o], NOW) is None
    (covered,) = outlook(CHAIN, [published], {}, reuse_key=True, hosts=HOSTS, now=NOW)
    assert ari_warning(soon, [covered], NOW) is None
