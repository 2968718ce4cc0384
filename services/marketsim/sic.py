"""Real SIC codes (SEC descriptions) spread over every division, with the weight of each in the market.

The simulated market draws each operating company's SIC code from this table. The generator's
sector factor is the SIC *division* (the first-level grouping of the SIC manual), so names that
share a division co-move, as the fetcher's SIC-to-sector mapping would expect.
"""

from __future__ import annotations

import numpy as np

# (code, SEC description, relative frequency among listed operating companies)
SIC_TABLE: tuple[tuple[int, str, float], ...] = (
    (100, "AGRICULTURAL PRODUCTION-CROPS", 0.4),
    (200, "AGRICULTURAL PROD-LIVESTOCK & ANIMAL SPECIALTIES", 0.2),
    (700, "AGRICULTURAL SERVICES", 0.2),
    (1000, "METAL MINING", 1.2),
    (1040, "GOLD AND SILVER ORES", 1.0),
    (1311, "CRUDE PETROLEUM & NATURAL GAS", 2.0),
    (1381, "DRILLING OIL & GAS WELLS", 0.5),
    (1531, "OPERATIVE BUILDERS", 0.5),
    (1600, "HEAVY CONSTRUCTION OTHER THAN BLDG CONST - CONTRACTORS", 0.5),
    (1731, "ELECTRICAL WORK", 0.3),
    (2000, "FOOD AND KINDRED PRODUCTS", 1.0),
    (2080, "BEVERAGES", 0.6),
    (2834, "PHARMACEUTICAL PREPARATIONS", 6.0),
    (2836, "BIOLOGICAL PRODUCTS, (NO DIAGNOSTIC SUBSTANCES)", 3.0),
    (2860, "INDUSTRIAL ORGANIC CHEMICALS", 0.6),
    (2911, "PETROLEUM REFINING", 0.5),
    (3312, "STEEL WORKS, BLAST FURNACES & ROLLING MILLS (COKE OVENS)", 0.5),
    (3571, "ELECTRONIC COMPUTERS", 0.5),
    (3674, "SEMICONDUCTORS & RELATED DEVICES", 2.5),
    (3711, "MOTOR VEHICLES & PASSENGER CAR BODIES", 0.8),
    (3721, "AIRCRAFT", 0.4),
    (3841, "SURGICAL & MEDICAL INSTRUMENTS & APPARATUS", 2.0),
    (4011, "RAILROADS, LINE-HAUL OPERATING", 0.3),
    (4512, "AIR TRANSPORTATION, SCHEDULED", 0.4),
    (4813, "TELEPHONE COMMUNICATIONS (NO RADIOTELEPHONE)", 0.8),
    (4911, "ELECTRIC SERVICES", 1.5),
    (4924, "NATURAL GAS DISTRIBUTION", 0.5),
    (5045, "WHOLESALE-COMPUTERS & PERIPHERAL EQUIPMENT & SOFTWARE", 0.4),
    (5122, "WHOLESALE-DRUGS PROPRIETARIES & DRUGGISTS' SUNDRIES", 0.3),
    (5331, "RETAIL-VARIETY STORES", 0.4),
    (5411, "RETAIL-GROCERY STORES", 0.4),
    (5812, "RETAIL-EATING PLACES", 1.0),
    (5961, "RETAIL-CATALOG & MAIL-ORDER HOUSES", 0.6),
    (6021, "NATIONAL COMMERCIAL BANKS", 2.5),
    (6022, "STATE COMMERCIAL BANKS", 4.0),
    (6199, "FINANCE SERVICES", 1.5),
    (6211, "SECURITY BROKERS, DEALERS & FLOTATION COMPANIES", 1.0),
    (6311, "LIFE INSURANCE", 0.6),
    (6331, "FIRE, MARINE & CASUALTY INSURANCE", 1.0),
    (6770, "BLANK CHECKS", 4.0),
    (6798, "REAL ESTATE INVESTMENT TRUSTS", 4.0),
    (7011, "HOTELS & MOTELS", 0.4),
    (7370, "SERVICES-COMPUTER PROGRAMMING, DATA PROCESSING, ETC.", 2.0),
    (7372, "SERVICES-PREPACKAGED SOFTWARE", 5.0),
    (7389, "SERVICES-BUSINESS SERVICES, NEC", 1.5),
    (7812, "SERVICES-MOTION PICTURE & VIDEO TAPE PRODUCTION", 0.4),
    (8000, "SERVICES-HEALTH SERVICES", 1.0),
    (8731, "SERVICES-COMMERCIAL PHYSICAL & BIOLOGICAL RESEARCH", 0.8),
    (9995, "NON-OPERATING ESTABLISHMENTS", 0.3),
)

# SIC divisions by the upper bound (exclusive) of their code range; the generator's sectors.
DIVISIONS: tuple[tuple[int, str], ...] = (
    (1000, "Agriculture, Forestry and Fishing"),
    (1500, "Mining"),
    (1800, "Construction"),
    (4000, "Manufacturing"),
    (5000, "Transportation, Communications, Electric, Gas and Sanitary Services"),
    (5200, "Wholesale Trade"),
    (6000, "Retail Trade"),
    (6800, "Finance, Insurance and Real Estate"),
    (9100, "Services"),
    (10000, "Public Administration and Nonclassifiable"),
)

SIC_CODES = np.array([row[0] for row in SIC_TABLE], dtype=np.int64)
SIC_DESCRIPTIONS = np.array([row[1] for row in SIC_TABLE])
SIC_WEIGHTS = np.array([row[2] for row in SIC_TABLE], dtype=np.float64) / sum(row[2] for row in SIC_TABLE)


def division_index(codes: np.ndarray) -> np.ndarray:
    """Index into :data:`DIVISIONS` of each SIC code (vectorised)."""
    bounds = np.array([upper for upper, _ in DIVISIONS], dtype=np.int64)
    return np.searchsorted(bounds, np.asarray(codes, dtype=np.int64), side="right")
