"""Ranker: technical rating, alpha blend, sector-relative ranks, trade plans, result cache."""
