"""Test harness: a real DNS lab on loopback (Knot, Unbound, a forging proxy) for the tests."""
