"""Habitats stage: population habitat model, per-subject maps/fractions, spatiotemporal change.

Import the submodule you need (`model`, `apply`, `plots`, `spatiotemporal`): the per-session jobs
start a Python each, and the spatiotemporal analysis alone would add statsmodels' 0.8 s import.
"""
