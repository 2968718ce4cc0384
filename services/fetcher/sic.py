"""SIC code -> (sector, industry): Polygon has no sector field, so the project keeps this table.

Sectors are the 11 GICS-like sectors. The industry is the SIC major group (first two digits) name,
refined for the four-digit codes that the major group would misplace (software in business
services, pharmaceuticals in chemicals, REITs in holding offices, ...). Unmapped codes give
"Unknown" for both.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from services.contract.sectors import SECTORS as SECTORS  # re-exported for the mapping's tests
from services.contract.sectors import UNKNOWN

# Major group (two digits) -> (sector, industry).
_MAJOR: dict[int, tuple[str, str]] = {
    1: ("Consumer Staples", "Agricultural Production - Crops"),
    2: ("Consumer Staples", "Agricultural Production - Livestock"),
    7: ("Consumer Staples", "Agricultural Services"),
    8: ("Materials", "Forestry"),
    9: ("Consumer Staples", "Fishing, Hunting and Trapping"),
    10: ("Materials", "Metal Mining"),
    12: ("Energy", "Coal Mining"),
    13: ("Energy", "Oil and Gas Extraction"),
    14: ("Materials", "Nonmetallic Minerals Mining"),
    15: ("Industrials", "Building Construction"),
    16: ("Industrials", "Heavy Construction"),
    17: ("Industrials", "Construction Special Trade Contractors"),
    20: ("Consumer Staples", "Food and Kindred Products"),
    21: ("Consumer Staples", "Tobacco Products"),
    22: ("Consumer Discretionary", "Textile Mill Products"),
    23: ("Consumer Discretionary", "Apparel"),
    24: ("Materials", "Lumber and Wood Products"),
    25: ("Consumer Discretionary", "Furniture and Fixtures"),
    26: ("Materials", "Paper and Allied Products"),
    27: ("Communication Services", "Printing and Publishing"),
    28: ("Materials", "Chemicals and Allied Products"),
    29: ("Energy", "Petroleum Refining"),
    30: ("Materials", "Rubber and Plastics Products"),
    31: ("Consumer Discretionary", "Leather Products"),
    32: ("Materials", "Stone, Clay, Glass and Concrete Products"),
    33: ("Materials", "Primary Metal Industries"),
    34: ("Industrials", "Fabricated Metal Products"),
    35: ("Industrials", "Industrial Machinery and Equipment"),
    36: ("Information Technology", "Electronic and Electrical Equipment"),
    37: ("Industrials", "Transportation Equipment"),
    38: ("Health Care", "Instruments and Related Products"),
    39: ("Consumer Discretionary", "Miscellaneous Manufacturing"),
    40: ("Industrials", "Railroad Transportation"),
    41: ("Industrials", "Passenger Transit"),
    42: ("Industrials", "Trucking and Warehousing"),
    44: ("Industrials", "Water Transportation"),
    45: ("Industrials", "Air Transportation"),
    46: ("Energy", "Pipelines"),
    47: ("Industrials", "Transportation Services"),
    48: ("Communication Services", "Communications"),
    49: ("Utilities", "Electric, Gas and Sanitary Services"),
    50: ("Industrials", "Wholesale - Durable Goods"),
    51: ("Consumer Staples", "Wholesale - Nondurable Goods"),
    52: ("Consumer Discretionary", "Building Materials and Garden Supplies"),
    53: ("Consumer Discretionary", "General Merchandise Stores"),
    54: ("Consumer Staples", "Food Stores"),
    55: ("Consumer Discretionary", "Automotive Dealers and Service Stations"),
    56: ("Consumer Discretionary", "Apparel and Accessory Stores"),
    57: ("Consumer Discretionary", "Home Furniture and Equipment Stores"),
    58: ("Consumer Discretionary", "Eating and Drinking Places"),
    59: ("Consumer Discretionary", "Miscellaneous Retail"),
    60: ("Financials", "Depository Institutions"),
    61: ("Financials", "Nondepository Credit Institutions"),
    62: ("Financials", "Security and Commodity Brokers"),
    63: ("Financials", "Insurance Carriers"),
    64: ("Financials", "Insurance Agents and Brokers"),
    65: ("Real Estate", "Real Estate"),
    67: ("Financials", "Holding and Other Investment Offices"),
    70: ("Consumer Discretionary", "Hotels and Lodging"),
    72: ("Consumer Discretionary", "Personal Services"),
    73: ("Industrials", "Business Services"),
    75: ("Consumer Discretionary", "Automotive Repair and Services"),
    76: ("Industrials", "Miscellaneous Repair Services"),
    78: ("Communication Services", "Motion Pictures"),
    79: ("Consumer Discretionary", "Amusement and Recreation Services"),
    80: ("Health Care", "Health Services"),
    81: ("Industrials", "Legal Services"),
    82: ("Consumer Discretionary", "Educational Services"),
    83: ("Health Care", "Social Services"),
    87: ("Industrials", "Engineering, Accounting and Management Services"),
    89: ("Industrials", "Miscellaneous Services"),
}

# Four-digit ranges (inclusive) that override their major group.
_RANGES: tuple[tuple[int, int, str, str], ...] = (
    (2080, 2087, "Consumer Staples", "Beverages"),
    (2830, 2836, "Health Care", "Pharmaceuticals and Biotechnology"),
    (2840, 2844, "Consumer Staples", "Household and Personal Products"),
    (3570, 3579, "Information Technology", "Computer and Office Equipment"),
    (3630, 3639, "Consumer Discretionary", "Household Appliances"),
    (3650, 3652, "Consumer Discretionary", "Household Audio and Video Equipment"),
    (3661, 3669, "Information Technology", "Communications Equipment"),
    (3670, 3679, "Information Technology", "Semiconductors and Electronic Components"),
    (3710, 3716, "Consumer Discretionary", "Motor Vehicles and Parts"),
    (3720, 3729, "Industrials", "Aerospace"),
    (3760, 3769, "Industrials", "Aerospace and Defense"),
    (3820, 3829, "Information Technology", "Measuring and Control Instruments"),
    (3840, 3851, "Health Care", "Medical Instruments and Supplies"),
    (3860, 3861, "Information Technology", "Photographic Equipment"),
    (4900, 4939, "Utilities", "Electric and Gas Utilities"),
    (4940, 4949, "Utilities", "Water Supply"),
    (4950, 4959, "Industrials", "Waste Management"),
    (5960, 5961, "Consumer Discretionary", "Internet and Catalog Retail"),
    (6770, 6770, "Financials", "Blank Checks"),
    (6798, 6798, "Real Estate", "Real Estate Investment Trusts"),
    (7370, 7379, "Information Technology", "Software and Computer Services"),
    (7810, 7829, "Communication Services", "Motion Pictures and Entertainment"),
    (8000, 8099, "Health Care", "Health Services"),
    (8731, 8731, "Health Care", "Biological Research"),
)


@lru_cache(maxsize=4096)
def classify(sic_code: int) -> tuple[str, str]:
    """(sector, industry) of one SIC code; ("Unknown", "Unknown") when not mapped."""
    for lo, hi, sector, industry in _RANGES:
        if lo <= sic_code <= hi:
            return sector, industry
    return _MAJOR.get(sic_code // 100, (UNKNOWN, UNKNOWN)) if sic_code > 0 else (UNKNOWN, UNKNOWN)


def classify_many(sic_codes: np.ndarray) -> tuple[list[str], list[str]]:
    """Sectors and industries of many codes (one table look-up per distinct code)."""
    codes = np.asarray(sic_codes, dtype=np.int64)
    unique, inverse = np.unique(codes, return_inverse=True)
    pairs = [classify(int(c)) for c in unique]
    sectors: np.ndarray | list[str]
    industries: np.ndarray | list[str]
    sectors = np.array([p[0] for p in pairs] or [UNKNOWN], dtype=object)[inverse] if len(codes) else []
    industries = np.array([p[1] for p in pairs] or [UNKNOWN], dtype=object)[inverse] if len(codes) else []
    return list(sectors), list(industries)
