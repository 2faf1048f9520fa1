"""Depreciation: MACRS tax tables, bonus depreciation by date, and straight-line book schedules.

MACRS (IRS Publication 946, appendix A) is declining balance switching to straight
line in the year that gives more, with a first-year convention: half-year (Table
A-1), mid-quarter (Tables A-2..A-5: 10.5, 7.5, 4.5 or 1.5 months of the first year),
or mid-month for real property (Table A-7a). 5-year property (computers, servers,
network gear) uses 200% DB; 15-year property (land improvements, on-site power
plant) 150% DB; nonresidential real property (buildings) 39-year straight line.
The mid-quarter convention applies to a tax year when more than 40% of its
depreciable basis was placed in service in the last quarter (Pub 946, ch. 4).
"""

from __future__ import annotations

import datetime as dt
from functools import cache

# First-year fraction by convention (Pub 946 ch. 4, "Applying the Convention").
MID_QUARTER_FIRST_YEAR = {1: 10.5 / 12, 2: 7.5 / 12, 3: 4.5 / 12, 4: 1.5 / 12}
HALF_YEAR = 0.5
MID_QUARTER_THRESHOLD = 0.40  # > 40% of a year's basis in Q4 -> mid-quarter

# Bonus depreciation by acquisition / placed-in-service date.
# TCJA (P.L. 115-97, IRC 168(k)(6)): 100% for property acquired after 2017-09-27 and
# placed in service before 2023, then 80% (2023), 60% (2024), 40% (2025), 20% (2026),
# 0% from 2027. OBBBA (P.L. 119-21, signed 2025-07-04, sec. 70301): 100% again,
# permanently, for property acquired after 2025-01-19. Buildings get no bonus.
OBBBA_CUTOFF = dt.date(2025, 1, 19)
TCJA_PHASE_DOWN = {2023: 0.8, 2024: 0.6, 2025: 0.4, 2026: 0.2}


def bonus_rate(acquired: dt.date, law: str = "obbba") -> float:
    """Bonus depreciation rate for eligible property acquired (and placed in service) then."""
    if law not in ("tcja", "obbba"):
        raise ValueError(f"law must be 'tcja' or 'obbba', got {law!r}")
    if law == "obbba" and acquired > OBBBA_CUTOFF:
        return 1.0
    if acquired <= dt.date(2017, 9, 27):
        return 0.0  # pre-TCJA 50% regime is out of scope
    if acquired.year <= 2022:
        return 1.0
    return TCJA_PHASE_DOWN.get(acquired.year, 0.0)


@cache
def macrs_rates(life: int, convention: str = "half-year", quarter: int = 1) -> tuple[float, ...]:
    """Fractions of basis deducted per tax year (GDS, 200% DB for 3-10 yr, 150% for 15-20 yr)."""
    if life not in (3, 5, 7, 10, 15, 20):
        raise ValueError(f"MACRS life must be 3, 5, 7, 10, 15 or 20 years, got {life}")
    if convention == "half-year":
        first = HALF_YEAR
    elif convention == "mid-quarter":
        if quarter not in MID_QUARTER_FIRST_YEAR:
            raise ValueError(f"quarter must be 1-4, got {quarter}")
        first = MID_QUARTER_FIRST_YEAR[quarter]
    else:
        raise ValueError(f"convention must be 'half-year' or 'mid-quarter', got {convention!r}")
    rate = (2.0 if life <= 10 else 1.5) / life
    remaining, life_left = 1.0, float(life)
    out = []
    for year in range(life + 1):
        frac = first if year == 0 else 1.0
        if life_left <= 1.0 + 1e-12:  # last (partial) year: the rest of the basis
            out.append(remaining)
            break
        db = remaining * rate * frac
        sl = remaining / life_left * frac
        dep = max(db, sl) if year else db
        out.append(dep)
        remaining -= dep
        life_left -= frac
    return tuple(out)


@cache
def real_property_rates(month: int, life: float = 39.0) -> tuple[float, ...]:
    """Straight-line mid-month rates, as Pub 946 Table A-7a tabulates them (month 1-12)."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1-12, got {month}")
    # Pub 946 rounds the full-year rate to 3 decimals of a percent (2.564%) and splits
    # what is left between the first and the last year by the mid-month fraction.
    full = round(100.0 / life, 3) / 100.0
    n_full = int(life) - 1
    rest = 1.0 - full * n_full
    first = rest * (12 - month + 0.5) / 12
    return (first, *([full] * n_full), rest - first)


def book_straight_line(life_years: float, quarters: int) -> list[float]:
    """Quarterly book depreciation fractions: straight line from the quarter placed in service."""
    if life_years <= 0:
        raise ValueError(f"life_years must be > 0, got {life_years}")
    n = life_years * 4
    return [min(1.0, n - q) / n if q < n else 0.0 for q in range(quarters)]


def annual_to_quarters(annual: tuple[float, ...], year_q1: int, quarters: int) -> list[float]:
    """Spread each tax year's deduction evenly over its calendar quarters on the timeline.

    ``year_q1`` is the timeline index of Q1 of the acquisition year (negative when
    the timeline starts mid-year; deductions dated before the timeline go to quarter 0).
    """
    out = [0.0] * quarters
    for y, rate in enumerate(annual):
        for k in range(4):
            q = max(year_q1 + 4 * y + k, 0)
            if q < quarters:
                out[q] += rate / 4
    return out
