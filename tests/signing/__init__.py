"""Tests of keys, trust, pack, sign and verify (kaisec.keys, kaisec.trust, kaisec.package)."""
