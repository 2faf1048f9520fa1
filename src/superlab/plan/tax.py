"""Corporate income tax for one period, elementwise over Monte Carlo draws.

- Federal rate 21% (IRC 11(b), TCJA 2017).
- Business interest deduction capped at 30% of adjusted taxable income, here
  EBITDA (IRC 163(j); the EBITDA basis applied 2018-2021 and again for tax years
  from 2025 under OBBBA, P.L. 119-21); disallowed interest carries forward.
- Net operating losses carry forward and offset at most 80% of taxable income
  (IRC 172(a), TCJA).
- Corporate alternative minimum tax: 15% of adjusted financial statement income
  for corporations with > $1B of it (IRC 55/56A, Inflation Reduction Act 2022);
  AFSI may use tax depreciation for section 168 property (IRC 56A(c)(13)), so by
  default the floor is 15% x (EBITDA - tax depreciation - interest). Credits and
  state taxes are out of scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from superlab.plan.montecarlo import Draws

FEDERAL_RATE = 0.21  # IRC 11(b)
INTEREST_CAP = 0.30  # IRC 163(j)(1)(B)
MIN_TAX_RATE = 0.15  # IRC 55(b)(2), CAMT
NOL_LIMIT = 0.80  # IRC 172(a)(2)


@dataclass
class TaxState:
    """What carries from one period to the next: disallowed interest and losses."""

    interest_carry: Draws = 0.0
    nol: Draws = 0.0


def period_tax(
    *,
    ebitda: Draws,
    tax_depreciation: Draws,
    book_depreciation: Draws,
    interest: Draws,
    state: TaxState,
    rate: float = FEDERAL_RATE,
    interest_cap: float = INTEREST_CAP,
    min_rate: float = MIN_TAX_RATE,
    camt_tax_depreciation: bool = True,
) -> tuple[dict[str, Any], TaxState]:
    """Tax due for one period and the state carried forward; formulas in the module docstring."""
    ebitda = np.asarray(ebitda, dtype=float)
    limit = interest_cap * np.maximum(ebitda, 0.0)
    claimable = interest + state.interest_carry
    deducted = np.minimum(claimable, limit)
    taxable = ebitda - tax_depreciation - deducted
    nol_used = np.minimum(state.nol, NOL_LIMIT * np.maximum(taxable, 0.0))
    after_nol = taxable - nol_used
    regular = rate * np.maximum(after_nol, 0.0)
    depreciation = tax_depreciation if camt_tax_depreciation else book_depreciation
    book_income = ebitda - depreciation - interest
    floor = min_rate * np.maximum(book_income, 0.0)
    tax = np.maximum(regular, floor)
    new_state = TaxState(
        interest_carry=claimable - deducted,
        nol=state.nol - nol_used + np.maximum(-taxable, 0.0),
    )
    return {
        "interest_deducted": deducted,
        "taxable_income": taxable,
        "regular_tax": regular,
        "minimum_tax": floor,
        "tax": tax,
        "min_tax_binds": floor > regular,
    }, new_state
