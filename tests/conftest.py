"""Shared fixtures: the DNS lab (Knot primary and secondary, Unbound, tamper proxy) on loopback."""

pytest_plugins = ("tests.infra.fixtures",)
