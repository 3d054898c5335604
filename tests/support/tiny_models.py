"""Tiny random model and SmolLM2 fixtures."""
