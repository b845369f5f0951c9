"""What is due now at the DNS for a lineage with a publisher: add the new records, retire old ones.

The order is RFC 7671 §8.1 (RFC 6698 appendix A.4): the records of a held chain are added next
to the old ones at once (step 1 of its plan); the chain is served 2 x TTL after every
authoritative server serves them (promotion.consider keeps that clock); the records that match
nothing in use go only once the new chain has been served for `retire_after` seconds (default
2 x TTL: caches may still hold the RRset the old chain was validated with).

dane-hook adds and removes single records (RFC 2136 §2.5.1 and §2.5.4), never replaces an
RRset, and removes only records its ledger says it added or adopted. Every other record that
matches nothing in use is reported as stale and left in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from dane_hook.certs.chain import ServedChain
from dane_hook.certs.keys import PublicKey
from dane_hook.dns.publish import Change, Publisher, PublishError, RRsetView, publisher_from_table
from dane_hook.errors import Error
from dane_hook.rollover.decision import Publication
from dane_hook.rollover.ledger import Entry, Ledger, ServedSince, load_ledger, save_ledger
from dane_hook.rollover.observe import Observation
from dane_hook.rollover.plan import make_plan
from dane_hook.rollover.promotion import (
    Action,
    Context,
    Outcome,
    chain_of,
    explicit_endpoints,
    judge,
    read_candidate,
    release,
)
from dane_hook.rollover.served_view import ServedView
from dane_hook.rollover.state import State
from dane_hook.tlsa.generate import key_record
from dane_hook.tlsa.matching import authenticate
from dane_hook.tlsa.record import TLSARecord, Usage

DEFAULT_TTL = 3600
"""TTL of a new RRset when neither the RRset nor the publisher gives one."""


@dataclass(frozen=True)
class PublishReport:
    """What `publish_due` did (or, in a dry run, would do) for one lineage."""

    lineage: str
    publisher: str
    changes: tuple[Change, ...] = ()
    """The changes due now: sent (unless `dry_run`), adds before removals."""
    dry_run: bool = False
    stale: tuple[str, ...] = ()
    """Records of someone else's that match nothing in use: reported, never removed."""
    waiting: tuple[str, ...] = ()
    """dane-hook's unused records that stay until `retire_after` has passed."""
    warnings: tuple[str, ...] = ()
    error: str | None = None
    """One line naming zone, server and key name when an update failed; nothing was removed."""
    transient: bool = True

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class _Chains:
    served: ServedChain | None
    held: ServedChain | None

    def all(self) -> list[ServedChain]:
        return [c for c in (self.served, self.held) if c is not None]


@dataclass
class _Due:
    adds: list[Change] = field(default_factory=list)
    removes: list[Change] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def remember_next_key(ledger: Ledger, lineage: str, key: PublicKey | None) -> None:
    """The key acme.sh staged for the next issuance (current + next): its 3 1 1 is in use."""
    if key is None:
        ledger.next_keys.pop(lineage, None)
    else:
        ledger.next_keys[lineage] = key_record(key, Usage.DANE_EE, 1).to_text()


def publisher_of(context: Context, lineage: str) -> Publisher | None:
    """The lineage's publisher, None when it has none (dane-hook only prints the plan)."""
    name = context.config.lineage(lineage).publish
    if name is None:
        return None
    table = context.config.publishers[name]
    return publisher_from_table(name, table, context.config.path)


def _chains(context: Context, state: State, lineage: str) -> _Chains:
    enrollment = state.enrolled.get(lineage)
    served = None
    if enrollment is not None:
        view = ServedView(Path(enrollment.served_dir))
        if view.exists():
            served = chain_of(view.read_current(), f"served {lineage}")
    held = None
    held_state = state.held.get(lineage)
    if held_state is not None:
        try:
            files = read_candidate(context.config, lineage, held_state.version)
            held = chain_of(files, f"held {lineage}")
        except Error:
            held = None
    return _Chains(served, held)


def _authenticates(
    record: TLSARecord, chains: Iterable[ServedChain], host: str, now: datetime
) -> bool:
    return any(authenticate(c, [record], host=host, now=now).authenticated for c in chains)


def _issuer_records(context: Context, chains: _Chains) -> set[str]:
    """The catalog's 2 1 1 of every active and backup intermediate of the chains' key types."""
    from dane_hook.catalog import load_catalog
    from dane_hook.catalog.coverage import issuers_for

    catalog = load_catalog(context.config.state_dir, context.now)
    texts: set[str] = set()
    for chain in chains.all():
        issuers = issuers_for(chain, catalog, context.now)
        if issuers.checkable:
            texts |= {k.records(2, 1, 1)[0].to_text() for k in issuers.expected}
        if chain.issuers:
            from dane_hook.tlsa.generate import certificate_record

            texts.add(certificate_record(chain.issuers[0], 2, 1, 1).to_text())
    return texts


def _rrset(publisher: Publisher, observation: Observation) -> RRsetView:
    """The RRset from the publishing side (primary, API); exec cannot read: what DNS serves."""
    view = publisher.read(observation.endpoint)
    if view is not None:
        return view
    published = observation.published
    records = tuple(sorted(r.to_text() for r in published.records))
    import dns.name

    owner = dns.name.from_text(observation.endpoint)
    return RRsetView(owner, published.ttl if records else None, records)


def _settle_pending(
    ledger: Ledger, lineage: str, owner: str, present: set[str], now: datetime
) -> None:
    """An intent left by a run that was killed after (or before) sending its update."""
    for entry in list(ledger.of(lineage)):
        if entry.owner != owner or entry.pending is None:
            continue
        there = entry.record in present
        if entry.pending == "add":
            if there:  # the update went out: the record is dane-hook's, never added twice
                ledger.update(entry, added=entry.added or entry.pending_since or now, pending=None)
            elif entry.added is None:
                del ledger.entries[entry.key]
            else:
                ledger.update(entry, pending=None, pending_since=None)
        elif not there:
            ledger.update(entry, removed=now, pending=None, pending_since=None)
        else:
            ledger.update(entry, pending=None, pending_since=None)


def _endpoint_due(
    lineage: str,
    publisher: Publisher,
    observation: Observation,
    rrset: RRsetView,
    chains: _Chains,
    to_add: Sequence[TLSARecord],
    extra_in_use: set[str],
    ledger: Ledger,
    context: Context,
    *,
    adopt: bool,
) -> _Due:
    due = _Due()
    now, owner, host = context.now, observation.endpoint, _host(observation.endpoint)
    present = set(rrset.records)
    _settle_pending(ledger, lineage, owner, present, now)
    in_use = set(extra_in_use)
    for text in present:
        if _authenticates(TLSARecord.from_text(text), chains.all(), host, now):
            in_use.add(text)
    if adopt and chains.served is not None:
        for text in sorted(present):
            if ledger.get(lineage, owner, text) is None and _authenticates(
                TLSARecord.from_text(text), [chains.served], host, now
            ):
                ledger.put(Entry(lineage, owner, text, publisher.name, added=now, adopted=True))
    # RFC 2181 §5.2: one TTL per RRset; a new record takes the RRset's own.
    ttl = rrset.ttl if rrset.ttl is not None else publisher.ttl or observation.published.ttl
    ttl = ttl or DEFAULT_TTL
    wanted = [r.to_text() for r in to_add] + sorted(extra_in_use)
    for text in dict.fromkeys(wanted):
        if text not in present:
            due.adds.append(Change.add(owner, ttl, text))
    retire_after = context.config.lineage(lineage).retire_after
    wait = timedelta(seconds=retire_after if retire_after is not None else 2 * ttl)
    served_since = ledger.served.get(lineage)
    for text in sorted(present):
        entry = ledger.get(lineage, owner, text)
        owned = entry is not None and entry.owned
        if text in in_use:
            if entry is not None and entry.unused_since is not None:
                ledger.update(entry, unused_since=None)
            continue
        if not owned:
            if not ledger.owns(owner, text):
                due.stale.append(
                    f"{owner} TLSA {text} matches nothing in use and is not dane-hook's: "
                    "left in place"
                )
            continue
        assert entry is not None
        if entry.unused_since is None:
            entry = ledger.update(entry, unused_since=now)
        assert entry.unused_since is not None
        start = max(entry.unused_since, served_since.since if served_since else now)
        if chains.held is None and now - start >= wait:
            due.removes.append(Change.remove(owner, text))
        else:
            due.waiting.append(
                f"{owner} TLSA {text}: removed from {start + wait:%Y-%m-%d %H:%M:%S} UTC"
            )
    # Owned records that are gone (removed by someone else): history, not ours any more.
    for entry in list(ledger.of(lineage)):
        if (
            entry.owner == owner
            and entry.owned
            and entry.pending is None
            and entry.record not in present
        ):
            ledger.update(entry, removed=now)
    return due


def _host(endpoint: str) -> str:
    from dane_hook.rollover.observe import host_of

    return host_of(endpoint)


def _send(
    publisher: Publisher,
    changes: Sequence[Change],
    lineage: str,
    ledger: Ledger,
    context: Context,
) -> list[str]:
    """Write the intent, send, write the result (the ledger is saved around the update)."""
    if not changes:
        return []
    now, state_dir = context.now, context.config.state_dir
    for change in changes:
        owner = change.owner.to_text()
        entry = ledger.get(lineage, owner, change.rdata) or Entry(
            lineage, owner, change.rdata, publisher.name
        )
        ledger.update(entry, pending=change.action, pending_since=now)
    save_ledger(state_dir, ledger)
    outcome = publisher.apply(changes)  # PublishError: the intents stay, settled next run
    for change in changes:
        done = ledger.get(lineage, change.owner.to_text(), change.rdata)
        assert done is not None
        if change.action == "add":
            ledger.update(done, added=now, removed=None, pending=None, pending_since=None)
        else:
            ledger.update(done, removed=now, pending=None, pending_since=None)
    save_ledger(state_dir, ledger)
    return list(outcome.warnings)


def publish_due(
    lineage: str,
    *,
    context: Context,
    state: State,
    ledger: Ledger,
    dry_run: bool = False,
    adopt: bool = False,
) -> PublishReport | None:
    """Carry out what is due now at the DNS for `lineage`; None when it has no publisher.

    The caller holds the state lock. A PublishError ends in a report with one line (zone,
    server, key name): nothing is removed, the held chain stays held, the next run retries.
    """
    config = context.config
    lineage_config = config.lineage(lineage)
    try:
        publisher = publisher_of(context, lineage)
    except Error as exc:
        return PublishReport(
            lineage, lineage_config.publish or "", error=exc.diagnostics(), transient=False
        )
    if publisher is None:
        # No publisher: only the staged next key is kept, so the timer knows to look often.
        if ledger.next_keys.get(lineage) != load_ledger(config.state_dir).next_keys.get(lineage):
            save_ledger(config.state_dir, ledger)
        return None
    chains = _chains(context, state, lineage)
    enrollment = state.enrolled.get(lineage)
    if enrollment is None or (chains.served is None and chains.held is None):
        return PublishReport(lineage, publisher.name, warnings=(f"{lineage} serves no chain yet",))
    view = ServedView(Path(enrollment.served_dir))
    served_since = ledger.served.get(lineage)
    if view.current is not None and (served_since is None or served_since.version != view.current):
        ledger.served[lineage] = ServedSince(view.current, context.now)
    adopt = adopt or (lineage_config.adopt and lineage not in ledger.adopted)
    explicit = explicit_endpoints(config, lineage, enrollment)
    focus = chains.held or chains.served
    assert focus is not None
    judged = judge(focus, chains.served, explicit, context, state)
    plan = None
    if chains.held is not None:
        plan = make_plan(
            chains.held,
            [chains.served] if chains.served else [],
            judged.published,
            judged.decision,
            context.now,
            host_of=judged.hosts,
        )
    extra: set[str] = set()
    next_key = ledger.next_keys.get(lineage)
    if next_key is not None and chains.served is not None:
        extra.add(next_key)
    if lineage_config.issuer_records:
        extra |= _issuer_records(context, chains)
    adds: list[Change] = []
    removes: list[Change] = []
    stale: list[str] = []
    waiting: list[str] = []
    warnings: list[str] = []
    try:
        for observation in judged.observations:
            if observation.published.status is not Publication.SECURE:
                # Fail safe: records where DNS is not securely answering (or not DANE at all)
                # are neither added nor removed on a guess.
                warnings.append(
                    f"{observation.endpoint}: {observation.published.status.value}: "
                    "nothing published or retired there"
                )
                continue
            rrset = _rrset(publisher, observation)
            to_add: tuple[TLSARecord, ...] = ()
            if plan is not None:
                to_add = next(
                    (p.add for p in plan.endpoints if p.endpoint == observation.endpoint), ()
                )
            due = _endpoint_due(
                lineage,
                publisher,
                observation,
                rrset,
                chains,
                to_add,
                extra,
                ledger,
                context,
                adopt=adopt,
            )
            adds += due.adds
            removes += due.removes
            stale += due.stale
            waiting += due.waiting
        if adopt:
            ledger.adopted.add(lineage)
        report = PublishReport(
            lineage,
            publisher.name,
            tuple(adds + removes),
            dry_run,
            tuple(stale),
            tuple(waiting),
            tuple(warnings),
        )
        if dry_run:
            return report
        warnings += _send(publisher, adds, lineage, ledger, context)
        if adds:
            # Start the 2 x TTL clock now where every authoritative server already serves them.
            judge(focus, chains.served, explicit, context, state)
        # Only after every add took effect: a failed add removes nothing.
        warnings += _send(publisher, removes, lineage, ledger, context)
    except PublishError as exc:
        save_ledger(config.state_dir, ledger)
        return PublishReport(
            lineage,
            publisher.name,
            tuple(adds + removes),
            dry_run,
            tuple(stale),
            tuple(waiting),
            tuple(warnings),
            exc.diagnostics(),
            exc.transient,
        )
    if not adds and not removes:
        save_ledger(config.state_dir, ledger)
    return PublishReport(
        lineage,
        publisher.name,
        tuple(adds + removes),
        dry_run,
        tuple(stale),
        tuple(waiting),
        tuple(warnings),
    )


def publish_lineages(
    context: Context,
    state: State,
    names: Sequence[str] | None = None,
    *,
    dry_run: bool = False,
) -> list[PublishReport]:
    """`dane-hook publish`: what is due now for every enrolled lineage with a publisher."""
    ledger = load_ledger(context.config.state_dir)
    reports = []
    for lineage in sorted(state.enrolled):
        if names and lineage not in names:
            continue
        report = publish_due(lineage, context=context, state=state, ledger=ledger, dry_run=dry_run)
        if report is not None:
            reports.append(report)
    return reports


@dataclass(frozen=True)
class TimerRun:
    """`dane-hook release`: held chains considered again, and what was published or retired."""

    outcomes: tuple[Outcome, ...]
    publications: tuple[PublishReport, ...]
    quiet: bool = False
    """Nothing held, staged or in flight, and every lineage observed lately: nothing looked up."""


FULL_OBSERVATION_PERIOD = timedelta(hours=1)
"""Longest time between two observations of every lineage when nothing is held or staged."""


def watching(state: State, ledger: Ledger, names: Sequence[str] | None = None) -> list[str]:
    """What makes the timer look at every run (issue 15, item 13b): a held chain (promoted
    within one timer period of its earliest time), a staged next key (acme.sh current + next:
    its 3 1 1's 2 x TTL clock starts when dane-hook first sees it), an update in flight, or one
    of dane-hook's records waiting to be retired."""
    reasons = []
    for lineage in sorted(state.enrolled):
        if names and lineage not in names:
            continue
        if lineage in state.held:
            reasons.append(f"{lineage}: a chain is held")
        if lineage in ledger.next_keys:
            reasons.append(f"{lineage}: a next key is staged")
        if any(e.pending or (e.owned and e.unused_since) for e in ledger.of(lineage)):
            reasons.append(f"{lineage}: a record is being published or retired")
    return reasons


def quiet(context: Context, state: State, ledger: Ledger, names: Sequence[str] | None) -> bool:
    """May this timer run return at once, looking nothing up? Only when nothing is held,
    staged or in flight and every lineage was observed within FULL_OBSERVATION_PERIOD; the
    packaged timer runs every few minutes, so waits end within minutes of their earliest time
    and a quiet host asks the DNS once an hour."""
    if watching(state, ledger, names):
        return False
    if any(n not in ledger.observed_lineages for n in state.enrolled if not names or n in names):
        return False  # enrolled since the last full observation: look at it now
    last = ledger.observed
    return last is not None and timedelta(0) <= context.now - last < FULL_OBSERVATION_PERIOD


def timer_run(context: Context, state: State, names: Sequence[str] | None = None) -> TimerRun:
    """The timer: observe EVERY enrolled lineage (so a newly published record's 2 x TTL clock
    starts within one timer period), publish what is due, promote held chains now safe, then
    publish again for the promoted ones (the next key, the served-since clock).

    A run with nothing held, staged or in flight, within FULL_OBSERVATION_PERIOD of the last
    full observation, returns at once without a lookup (`quiet`)."""
    ledger = load_ledger(context.config.state_dir)
    if quiet(context, state, ledger, names):
        return TimerRun((), (), quiet=True)
    reports: dict[str, PublishReport] = {}
    for lineage in sorted(state.enrolled):
        if names and lineage not in names:
            continue
        report = publish_due(lineage, context=context, state=state, ledger=ledger)
        if report is not None:
            reports[lineage] = report
        elif lineage not in state.held:
            _observe_served(context, state, lineage)
    # A failed publication keeps its chain held: never promote on records that failed to go out.
    outcomes = release(context, state, names)
    for outcome in outcomes:
        if outcome.action == Action.PROMOTED and not _failed(reports.get(outcome.lineage)):
            again = publish_due(outcome.lineage, context=context, state=state, ledger=ledger)
            if again is not None:
                reports[outcome.lineage] = _merge(reports.get(outcome.lineage), again)
    if not names:
        ledger.observed = context.now
        ledger.observed_lineages = set(state.enrolled)
        save_ledger(context.config.state_dir, ledger)
    return TimerRun(tuple(outcomes), tuple(reports[n] for n in sorted(reports)))


def _failed(report: PublishReport | None) -> bool:
    return report is not None and report.failed


def _merge(first: PublishReport | None, second: PublishReport) -> PublishReport:
    if first is None:
        return second
    return PublishReport(
        second.lineage,
        second.publisher,
        first.changes + second.changes,
        second.dry_run,
        second.stale,
        second.waiting,
        first.warnings + second.warnings,
        second.error,
        second.transient,
    )


def _observe_served(context: Context, state: State, lineage: str) -> None:
    """Observe a lineage that nothing else looks at this run: first-seen times stay current."""
    enrollment = state.enrolled.get(lineage)
    if enrollment is None:
        return
    try:
        chains = _chains(context, state, lineage)
        if chains.served is not None:
            explicit = explicit_endpoints(context.config, lineage, enrollment)
            judge(chains.served, chains.served, explicit, context, state)
    except Error:
        return  # status and the next deploy report it; the timer must go on
