"""The CA issuer catalog shipped with dane-hook."""
