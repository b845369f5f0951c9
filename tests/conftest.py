"""Shared fixtures on loopback: the DNS lab (Knot primary and secondary, Unbound, tamper proxy),
Pebble as the ACME CA and real certbot runs against it."""

pytest_plugins = ("tests.infra.fixtures", "tests.infra.acme_fixtures")
