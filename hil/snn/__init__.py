"""Seed 004's spiking network: latency coding, LIF + double-exponential synapses, the 1T1R array path."""
