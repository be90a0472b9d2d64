"""Benchmarks: compute against the FLOP limit, the store at scale, a step's profile.
Measurement only: nothing imports it.
"""
