"""Stage 3, TLSA records: the RFC 6698 registries, the records of a chain, matching."""
