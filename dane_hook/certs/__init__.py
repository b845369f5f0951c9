"""Stage 1, what a renewal is about: public keys, the chain as served, RFC 5280 checks, names."""
