"""Stage 6, the live probe: what each MX address presents on the wire, and whether it passes."""
