"""Preflight checks: each inspects one kind of input and returns problems (never raises, never exits)."""
