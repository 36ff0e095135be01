"""Detectors: one composition class (base.Detector) and the parts the rungs plug into it."""
