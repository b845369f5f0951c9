"""Stage 5, DNS: validated TLSA lookups, the authoritative view, publishing own records."""
