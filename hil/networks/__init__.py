"""Seed 000's digits network in software and on the simulated chip's differential 1T1R arrays."""
