"""The ACME harness itself: real certbot against Pebble on loopback, HTTP-01 really validated
through a name in the lab zone. What the end-to-end tests of dane-hook rely on is checked here."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dane_hook.tlsa.generate import certificate_record
from tests.infra.certbot import Certbot, HookRecorder, Lineage
from tests.infra.pebble import Pebble

pytestmark = pytest.mark.slow

KINDS = ("cert", "chain", "fullchain", "privkey")


def ee_record(lineage: Lineage, version: int) -> str:
    """3 1 1 of the leaf of one archive version."""
    (leaf,) = lineage.certificates("cert", version)
    return certificate_record(leaf, 3, 1, 1).to_text()


def ta_record(lineage: Lineage, version: int) -> str:
    """2 1 1 of the issuer that one archive version's chain.pem carries."""
    (issuer,) = lineage.certificates("chain", version)
    return certificate_record(issuer, 2, 1, 1).to_text()


def test_certonly_validates_http01_for_real_and_lays_out_the_lineage(
    certbot: Certbot, pebble: Pebble, acme_domain: Callable[..., str]
) -> None:
    name = acme_domain()
    certbot.certonly([name])
    assert pebble.http_validations(name) > 0  # Pebble fetched the answer from certbot

    lineage = certbot.lineage(name)
    assert lineage.versions() == [1]
    for kind in KINDS:
        live = lineage.live_file(kind)
        assert live.is_symlink()
        assert os.readlink(live) == f"../../archive/{name}/{kind}1.pem"
        assert live.resolve() == lineage.archive_file(1, kind).resolve()
        assert lineage.live_version(kind) == 1

    (leaf,) = lineage.certificates("cert")
    (issuer,) = lineage.certificates("chain")
    assert lineage.certificates("fullchain") == [leaf, issuer]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [name]
    (intermediate,) = pebble.intermediates()
    assert issuer == intermediate and leaf.issuer == intermediate.subject

    key = serialization.load_pem_private_key(lineage.live_file("privkey").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key() == leaf.public_key()

    params = lineage.renewal_params()
    assert params["server"] == pebble.directory
    assert params["key_type"] == "ecdsa"
    assert params["authenticator"] == "standalone"
    assert params["http01_port"] == str(pebble.http_port)
    assert lineage.renewal_config()[""]["archive_dir"] == str(lineage.archive)


def test_a_name_pebble_cannot_reach_is_refused(certbot: Certbot) -> None:
    """No A record in the lab zone: Pebble's validation fails, so no test passes by accident."""
    done = certbot.certonly(["no-such-name.example.test"], check=False)
    assert done.returncode != 0
    assert "Some challenges have failed" in done.stderr
    assert not certbot.lineage("no-such-name.example.test").live.exists()


def test_reuse_key_keeps_the_spki_and_a_plain_renewal_changes_it(
    certbot: Certbot, acme_domain: Callable[..., str]
) -> None:
    name = acme_domain()
    certbot.certonly([name], key_type="rsa")
    lineage = certbot.lineage(name)

    certbot.renew(reuse_key=True)
    assert lineage.versions() == [1, 2] and lineage.live_version() == 2
    assert lineage.renewal_params()["reuse_key"] == "True"
    assert ee_record(lineage, 2) == ee_record(lineage, 1)

    certbot.renew(reuse_key=False)
    assert lineage.live_version() == 3
    assert lineage.renewal_params()["reuse_key"] == "False"
    assert ee_record(lineage, 3) != ee_record(lineage, 2)
    assert lineage.renewal_params()["key_type"] == "rsa"


def test_restarted_pebble_issues_from_a_new_intermediate(
    certbot: Certbot, pebble: Pebble, acme_domain: Callable[..., str]
) -> None:
    name = acme_domain()
    certbot.certonly([name], reuse_key=True)
    lineage = certbot.lineage(name)
    (before,) = pebble.intermediates()

    pebble.restart()
    (after,) = pebble.intermediates()
    assert after != before and pebble.last_start_seconds < 5
    # Pebble forgot certbot's account; certbot does not register again by itself.
    refused = certbot.renew(check=False)
    assert refused.returncode != 0 and "accountDoesNotExist" in refused.stderr
    assert certbot.reregister() == 1

    certbot.renew()
    assert lineage.live_version() == 2
    assert ta_record(lineage, 1) == certificate_record(before, 2, 1, 1).to_text()
    assert ta_record(lineage, 2) == certificate_record(after, 2, 1, 1).to_text()
    assert ta_record(lineage, 2) != ta_record(lineage, 1)
    assert ee_record(lineage, 2) == ee_record(lineage, 1)  # reuse_key: only the issuer moved


def test_deploy_hook_gets_the_lineage_and_the_names(
    certbot: Certbot,
    acme_domain: Callable[..., str],
    hook_recorder: Callable[[str], HookRecorder],
) -> None:
    first, second = acme_domain(), acme_domain()
    hook = hook_recorder("deploy")
    certbot.certonly([first, second], deploy_hook=hook.command)
    lineage = certbot.lineage(first)
    assert lineage.renewal_params()["renew_hook"] == hook.command

    certbot.renew()  # the stored hook runs again, after live/ points at the new version
    calls = hook.calls()
    assert [call.env for call in calls] == 2 * [
        {"RENEWED_LINEAGE": str(lineage.live), "RENEWED_DOMAINS": f"{first} {second}"}
    ]
    assert [call.live_cert for call in calls] == [
        f"../../archive/{first}/cert1.pem",
        f"../../archive/{first}/cert2.pem",
    ]


def test_directory_hook_runs_on_renewal_next_to_the_deploy_hook(
    certbot: Certbot,
    acme_domain: Callable[..., str],
    hook_recorder: Callable[[str], HookRecorder],
) -> None:
    name = acme_domain()
    in_directory = hook_recorder("directory")
    on_command_line = hook_recorder("command-line")
    certbot.certonly([name], deploy_hook=on_command_line.command)
    # Installed after issuance, as an admin would. (certbot 5 also runs renewal-hooks/deploy/
    # after certonly; certbot 2.1, Debian 12's, only on renewals.)
    installed = certbot.install_hook("50-record", f"#!/bin/sh\nexec {in_directory.command}\n")
    assert installed.parent == certbot.hooks_dir("deploy")

    certbot.renew()
    lineage = certbot.lineage(name)
    (call,) = in_directory.calls()
    assert call.env == {"RENEWED_LINEAGE": str(lineage.live), "RENEWED_DOMAINS": name}
    assert call.live_cert == f"../../archive/{name}/cert2.pem"
    assert [c.live_cert for c in on_command_line.calls()] == [
        f"../../archive/{name}/cert1.pem",
        f"../../archive/{name}/cert2.pem",
    ]
