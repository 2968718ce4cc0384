"""SIC code -> sector and industry."""

from __future__ import annotations

import numpy as np

from services.fetcher.sic import SECTORS, UNKNOWN, classify, classify_many


def test_four_digit_overrides_beat_the_major_group() -> None:
    assert classify(7372) == ("Information Technology", "Software and Computer Services")
    assert classify(7380) == ("Industrials", "Business Services")
    assert classify(2834) == ("Health Care", "Pharmaceuticals and Biotechnology")
    assert classify(2800) == ("Materials", "Chemicals and Allied Products")
    assert classify(6798) == ("Real Estate", "Real Estate Investment Trusts")
    assert classify(1311) == ("Energy", "Oil and Gas Extraction")


def test_unknown_codes() -> None:
    assert classify(0) == (UNKNOWN, UNKNOWN)
    assert classify(9999) == (UNKNOWN, UNKNOWN)


def test_many_and_every_sector_is_one_of_eleven() -> None:
    sectors, industries = classify_many(np.array([7372, 0, 7372, 4911]))
    assert sectors == ["Information Technology", UNKNOWN, "Information Technology", "Utilities"]
    assert industries[3] == "Electric and Gas Utilities"
    assert classify_many(np.zeros(0)) == ([], [])
    assert {classify(code)[0] for code in range(100, 10000)} - {UNKNOWN} == set(SECTORS)
