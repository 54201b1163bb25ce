"""Bounded fuzz runs of the parsers behind the HTTP listeners (issue 15): EST, OCSP, CRL
fetch, REST and manifest import. `python -m fuzz --target est --count 100000`; the CMP run
is `bench/fuzz_cmp.py`. See docs/security.md for the results of the full runs."""
