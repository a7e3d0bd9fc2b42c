"""Connectivity analysis of sparse input layers: metrics and plots."""
