"""Detectors, backbones, datasets, training, inference, comparison and the CLI."""
