"""Compute: Numba indicators, features and XGBoost alpha scores for panel chunks."""
