"""What tests and benchmarks share: the real server launched, Chromium, raw clients, synthetic runs."""
