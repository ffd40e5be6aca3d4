"""Seed 000 output corrector: defect configurations, the voltage dataset, corrector models and protocols."""
