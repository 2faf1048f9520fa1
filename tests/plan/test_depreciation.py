"""MACRS tables against IRS Publication 946 (appendix A), to the IRS's published rounding."""

from __future__ import annotations

import datetime as dt

import pytest

from superlab.plan.depreciation import (
    annual_to_quarters,
    bonus_rate,
    book_straight_line,
    macrs_rates,
    real_property_rates,
)

# Pub 946 Table A-1 (half-year), 5-year property, percent.
A1_5 = [20.00, 32.00, 19.20, 11.52, 11.52, 5.76]
# Pub 946 Tables A-2..A-5 (mid-quarter, placed in service in quarter 1..4), 5-year.
MQ_5 = {
    1: [35.00, 26.00, 15.60, 11.01, 11.01, 1.38],
    2: [25.00, 30.00, 18.00, 11.37, 11.37, 4.26],
    3: [15.00, 34.00, 20.40, 12.24, 11.30, 7.06],
    4: [5.00, 38.00, 22.80, 13.68, 10.94, 9.58],
}
# Pub 946 Table A-1, 15-year property (150% DB, half-year). The IRS alternates 5.90
# and 5.91 for the exact 5.9049 so that the column sums to 100.
A1_15 = [
    5.00,
    9.50,
    8.55,
    7.70,
    6.93,
    6.23,
    5.90,
    5.90,
    5.91,
    5.90,
    5.91,
    5.90,
    5.91,
    5.90,
    5.91,
    2.95,
]
# Pub 946 Table A-7a, 39-year nonresidential real property, mid-month: year 1 by
# month placed in service; years 2-39 are 2.564; year 40 mirrors year 1.
A7A_YEAR1 = [2.461, 2.247, 2.033, 1.819, 1.605, 1.391, 1.177, 0.963, 0.749, 0.535, 0.321, 0.107]


def _pct(rates: tuple[float, ...]) -> list[float]:
    return [100 * r for r in rates]


def test_five_year_half_year_table_a1() -> None:
    assert _pct(macrs_rates(5)) == pytest.approx(A1_5, abs=0.005)


@pytest.mark.parametrize("quarter", [1, 2, 3, 4])
def test_five_year_mid_quarter_tables_a2_to_a5(quarter: int) -> None:
    assert _pct(macrs_rates(5, "mid-quarter", quarter)) == pytest.approx(MQ_5[quarter], abs=0.005)


def test_fifteen_year_150db_table_a1() -> None:
    ours = _pct(macrs_rates(15))
    assert len(ours) == len(A1_15)
    assert ours == pytest.approx(A1_15, abs=0.006)  # exact 5.9049 vs the IRS 5.90/5.91
    assert sum(ours) == pytest.approx(100.0)


@pytest.mark.parametrize("month", range(1, 13))
def test_thirty_nine_year_mid_month_table_a7a(month: int) -> None:
    ours = _pct(real_property_rates(month))
    assert len(ours) == 40
    assert ours[0] == pytest.approx(A7A_YEAR1[month - 1], abs=0.0005)
    assert ours[1:39] == pytest.approx([2.564] * 38, abs=0.0005)
    assert ours[39] == pytest.approx(A7A_YEAR1[12 - month], abs=0.0005)
    assert sum(ours) == pytest.approx(100.0)


def test_bonus_rates_by_acquisition_date() -> None:
    assert bonus_rate(dt.date(2022, 6, 1)) == 1.0
    assert bonus_rate(dt.date(2024, 6, 1)) == 0.6
    assert bonus_rate(dt.date(2025, 1, 10)) == 0.4  # before the OBBBA cutoff
    assert bonus_rate(dt.date(2025, 3, 1)) == 1.0  # OBBBA: after 2025-01-19
    assert bonus_rate(dt.date(2025, 3, 1), "tcja") == 0.4
    assert bonus_rate(dt.date(2026, 3, 1), "tcja") == 0.2
    assert bonus_rate(dt.date(2027, 3, 1), "tcja") == 0.0
    with pytest.raises(ValueError, match="law"):
        bonus_rate(dt.date(2025, 3, 1), "none")


def test_book_and_quarter_spreading() -> None:
    assert sum(book_straight_line(5.5, 40)) == pytest.approx(1.0)
    assert book_straight_line(5.5, 3) == pytest.approx([1 / 22] * 3)
    # a deduction of 1.0 for the tax year whose Q1 is timeline index 2
    assert annual_to_quarters((1.0,), 2, 8) == [0, 0, 0.25, 0.25, 0.25, 0.25, 0, 0]
    with pytest.raises(ValueError, match="MACRS life"):
        macrs_rates(6)
