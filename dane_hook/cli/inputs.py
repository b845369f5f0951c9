"""Arguments shared by the commands that read a chain and name endpoints."""

from __future__ import annotations

import argparse
import sys

from dane_hook.certs.chain import ServedChain, build_chain
from dane_hook.certs.keys import PublicKey
from dane_hook.certs.names import dns_names
from dane_hook.errors import UsageError, shown_path
from dane_hook.exitcodes import ExitCode
from dane_hook.sources.files import load_certificates, load_public_key
from dane_hook.tlsa.record import PROTOCOLS, absolute_name, owner_name


def add_chain_arguments(parser: argparse.ArgumentParser, *, chain_required: bool = False) -> None:
    parser.add_argument("--cert", metavar="FILE", help="the certificate (PEM or DER)")
    parser.add_argument(
        "--chain",
        metavar="FILE",
        required=chain_required,
        help="the chain as served (fullchain.pem): leaf and issuers, PEM, any order",
    )
    parser.add_argument(
        "--key",
        metavar="FILE",
        help="the private key (or public key); only its public part is used",
    )


def add_owner_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="the server's host name, e.g. mail.example.com")
    parser.add_argument("--port", type=int, default=25, help="TCP port (default 25)")
    parser.add_argument("--proto", default="tcp", choices=PROTOCOLS, help="default tcp")
    parser.add_argument(
        "--name", metavar="OWNER", help="the TLSA owner name itself, e.g. _25._tcp.mail.example.com"
    )


def read_chain(args: argparse.Namespace) -> tuple[ServedChain | None, PublicKey | None]:
    """The served chain (None for a bare key) and the key, from --cert/--chain/--key."""
    key = load_public_key(args.key) if args.key else None
    files = [f for f in (args.cert, args.chain) if f]
    if not files:
        if key is None:
            raise UsageError("give --cert, --chain or --key")
        return None, key
    certificates = [c for f in files for c in load_certificates(f)]
    chain = build_chain(certificates, key, source=" + ".join(shown_path(f) for f in files))
    for stray in chain.stray:
        print(
            "dane-hook: warning: not on the leaf's issuer path, ignored: "
            f"{stray.subject.rfc4514_string()}",
            file=sys.stderr,
        )
    return chain, key


def owners(
    args: argparse.Namespace, chain: ServedChain | None, *, required: bool = True
) -> list[str]:
    """TLSA owner names: --name, or --host/--port/--proto, or each host name of the leaf (its
    subjectAltName dNSNames; a CA certificate has none). `required`: an owner is needed (zone
    and nsupdate output), so having none is a usage error naming the options to add."""
    if args.name and args.host:
        raise UsageError("give --name or --host, not both")
    if args.name:
        return [absolute_name(args.name, "owner name")]
    if args.host:
        return [owner_name(args.host, args.port, args.proto)]
    names = dns_names(chain.leaf) if chain is not None else []
    found: list[str] = []
    for host in dict.fromkeys(n for n in names if not n.startswith("*.")):
        try:
            found.append(owner_name(host, args.port, args.proto))
        except UsageError:
            if required:
                raise
    if found or not required:
        return found
    if chain is None:
        raise UsageError("a key has no DNS name: give --host or --name (or --format rdata)")
    if names:
        # RFC 7672 §3.2.3: a wildcard covers hosts, but the TLSA owner is the name of one host.
        raise UsageError(
            f"the certificate's only names are wildcards ({', '.join(names[:3])}): a TLSA "
            "owner needs a host name: give --host or --name (or --format rdata)"
        )
    raise UsageError("no DNS name in this certificate: give --host or --name (or --format rdata)")


def add_endpoint_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="E",
        help="_25._tcp.mx.example.com or mx.example.com[:PORT]; repeatable "
        "(default: every DNS name of the certificate at the configured ports)",
    )


# The exit status of a verdict (README, "Exit status"): served verdicts are 0. Keyed by the
# verdicts' values (Verdict is a str enum) so that `records` need not import the decision.
EXIT_FOR_VERDICT: dict[str, ExitCode] = {
    "safe": ExitCode.OK,
    "no-dane": ExitCode.OK,
    "insecure": ExitCode.OK,
    "incomplete": ExitCode.OK,
    "wait": ExitCode.WAIT,
    "unknown": ExitCode.UNKNOWN,
    "unsafe": ExitCode.UNSAFE,
}
