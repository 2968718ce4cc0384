"""Polygon-compatible market simulator: the embedded default market."""
