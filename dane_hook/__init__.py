"""dane-hook: keeps ACME certificate renewals from breaking DANE (RFC 6698, 7671, 7672)."""

__version__ = "0.1.0"
