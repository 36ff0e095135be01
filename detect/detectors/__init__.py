"""Detectors: one composition class (base.Detector) and the parts detect/build.py plugs into it."""
