"""The alpha models every replica serves, in the column order of a scored chunk's scores block."""

from __future__ import annotations

MODEL_NAMES: tuple[str, ...] = ("alpha_5d", "alpha_10d")
# The model whose out-of-sample bins give the 10-session win probability.
WIN_PROB_MODEL = "alpha_10d"
