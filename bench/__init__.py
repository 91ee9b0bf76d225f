"""Benchmarks: run by hand (`make bench`), never by `make test`. They talk only to 127.0.0.1."""
