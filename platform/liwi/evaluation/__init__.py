"""Evaluation: score models and baselines on layer tables, dataset adapters, ablations."""
