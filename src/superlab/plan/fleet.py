"""The fleet model: a scenario's quarters -> chips, power, capex, depreciation, tax, cash.

``uncertain_inputs(s)`` lists every range in the scenario by dotted path (catalog
price ranges included); ``fleet_model(s)`` returns a function of those paths
(``**{"company.capex_b.2025": array}``) computing every output at once over
Monte Carlo draws, so ``montecarlo.simulate`` and ``tornado`` apply unchanged.

Simplifications, stated: all non-campus capex (accelerators, rest of the servers,
network, other) is 5-year MACRS property and books over the server life; own
campus spend is 39-year real property from its median online quarter; a tax
year's deductions and EBITDA spread evenly over its quarters; taxes are paid in
the quarter they accrue; off-balance-sheet SPV campuses cost the company only
lease payments from their median online quarter, deductible as operating cost.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel

from superlab.plan.catalog import get_accelerator
from superlab.plan.depreciation import (
    MID_QUARTER_THRESHOLD,
    annual_to_quarters,
    bonus_rate,
    book_straight_line,
    macrs_rates,
    real_property_rates,
)
from superlab.plan.montecarlo import Dist, Input
from superlab.plan.scenario import BUILD_MONTHS, Scenario, qindex
from superlab.plan.tax import TaxState, period_tax

# Quarterly levels, not flows: never summed into a year's total.
STOCKS = ("cash_b", "fleet_units", "months_of_capex_in_cash", "added_it_gw", "added_facility_gw")


def uncertain_inputs(s: Scenario) -> dict[str, Input]:
    """Every range in the scenario by dotted path, plus catalog prices left unset."""
    found: dict[str, Input] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Dist):
            found[path] = node
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name), f"{path}.{name}" if path else name)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}.{i}")
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}")

    walk(s, "")
    for i, p in enumerate(s.accelerators):
        price = get_accelerator(p.accelerator).price_usd
        if p.price_usd is None and price is not None:
            found[f"accelerators.{i}.price_usd"] = Dist(low=price[0], high=price[1])
    for i, c in enumerate(s.campuses):
        if c.build_months is None:
            lo, hi = BUILD_MONTHS[c.build]
            found[f"campuses.{i}.build_months"] = Dist(low=lo, high=hi)
    return found


def _getter(s: Scenario, values: dict[str, Any]) -> Callable[[str], Any]:
    """Look a dotted path up in ``values``, else in the scenario (fixed numbers)."""

    def get(path: str) -> Any:
        if path in values:
            return values[path]
        node: Any = s
        for part in path.split("."):
            if isinstance(node, list):
                node = node[int(part)]
            elif isinstance(node, dict):
                node = node[int(part)] if part.isdigit() and int(part) in node else node[part]
            else:
                node = getattr(node, part)
        if isinstance(node, Dist):
            raise KeyError(f"{path} is uncertain: pass a value for it")
        return node

    return get


def fleet_model(s: Scenario) -> Callable[..., dict[str, Any]]:
    """A function of the uncertain inputs (by path) returning every output (by name)."""
    q0, T = qindex(s.start), qindex(s.end) - qindex(s.start) + 1
    labels = [f"{(q0 + t) // 4}Q{(q0 + t) % 4 + 1}" for t in range(T)]
    years = sorted({int(lab[:4]) for lab in labels})

    def run(**values: Any) -> dict[str, Any]:
        get = _getter(s, values)
        z = 0.0
        out: dict[str, Any] = {}
        acc_capex, units_q, it_gw_q = [z] * T, [z] * T, [z] * T
        for i, p in enumerate(s.accelerators):
            acc = get_accelerator(p.accelerator)
            per_chip = acc.h100_equivalents() if p.unit == "h100e" else 1.0
            to_fleet = (
                1.0 if s.units == p.unit else (per_chip if p.unit == "chips" else 1 / per_chip)
            )
            qs = [qindex(p.quarter)] if p.quarter else [p.year * 4 + k for k in range(4)]
            units, price = get(f"accelerators.{i}.units"), get(f"accelerators.{i}.price_usd")
            year = (p.year or int(p.quarter[:4])) if p.quarter or p.year else 0
            chips = units / per_chip
            for q in qs:
                if 0 <= q - q0 < T:
                    acc_capex[q - q0] = acc_capex[q - q0] + units * price / 1e9 / len(qs)
                    units_q[q - q0] = units_q[q - q0] + units * to_fleet / len(qs)
                    it_gw = chips * (acc.all_in_power_w() or 0.0) / 1e9 / len(qs)
                    it_gw_q[q - q0] = it_gw_q[q - q0] + it_gw
            pre = f"{year}."
            add = {
                "new_units": units * to_fleet,
                "new_accelerator_spend_b": units * price / 1e9,
                "new_chip_tdp_gw": chips * (acc.tdp_w or 0.0) / 1e9,
                "new_it_gw": chips * (acc.all_in_power_w() or 0.0) / 1e9,
            }
            for k, v in add.items():
                out[pre + k] = out.get(pre + k, 0.0) + v
        pue, homes = get("pue"), get("homes_per_gw")
        for y in years:
            if f"{y}.new_it_gw" in out:
                out[f"{y}.new_facility_gw"] = out[f"{y}.new_it_gw"] * pue
                out[f"{y}.homes_powered_m"] = out[f"{y}.new_facility_gw"] * homes / 1e6

        # Campuses: build spend spread over ceil(months / 3) quarters from start.
        own_campus, online_gw, lease_q = [z] * T, [z] * T, [z] * T
        campus_online: dict[str, float] = {}
        for i, c in enumerate(s.campuses):
            gw, cost = get(f"campuses.{i}.capacity_gw"), get(f"campuses.{i}.cost_per_gw_b")
            nb = np.ceil(np.asarray(get(f"campuses.{i}.build_months"), dtype=float) / 3.0)
            start = qindex(c.start) - q0
            for k in range(int(np.max(nb))):
                if 0 <= start + k < T and c.financed_by is None:
                    own_campus[start + k] = own_campus[start + k] + gw * cost * (k < nb) / nb
            for t in range(T):
                online_gw[t] = online_gw[t] + gw * (t >= start + nb)
            campus_online[c.name] = float(np.median(start + nb))
        out.update({f"{lab}.campus_online_gw": online_gw[t] for t, lab in enumerate(labels)})

        # Company capex by quarter: actuals, else the year's rest spread evenly.
        capex = [z] * T
        for y in years:
            qs = [t for t, lab in enumerate(labels) if lab.startswith(str(y))]
            actual = {t: s.company.capex_actual_b.get(labels[t]) for t in qs}
            known = sum(
                get(f"company.capex_actual_b.{labels[t]}") for t in qs if actual[t] is not None
            )
            rest = [t for t in qs if actual[t] is None]
            total = get(f"company.capex_b.{y}")
            for t in qs:
                capex[t] = (
                    get(f"company.capex_actual_b.{labels[t]}")
                    if actual[t] is not None
                    else (total - known) / len(rest)
                )
        other = [capex[t] - acc_capex[t] - own_campus[t] for t in range(T)]

        # Depreciation: 5-year MACRS (+bonus) and straight-line book on non-campus capex.
        tax_dep, book_dep = [z] * T, [z] * T
        life = get("depreciation.server_life_years")
        blife = get("depreciation.building_life_years")
        five = [capex[t] - own_campus[t] for t in range(T)]
        for y in years:
            qs = [t for t, lab in enumerate(labels) if lab.startswith(str(y))]
            year_total = sum(five[t] for t in qs)
            q4 = sum(five[t] for t in qs if labels[t].endswith("Q4"))
            mid_q = np.asarray(q4) > MID_QUARTER_THRESHOLD * np.asarray(year_total)
            for t in qs:
                cq = int(labels[t][-1])
                bonus = bonus_rate(dt.date(y, 3 * cq, 1), s.depreciation.bonus_law)
                hy = macrs_rates(5, "half-year")
                mq = macrs_rates(5, "mid-quarter", cq)
                y_q1 = t - (cq - 1)
                for k in range(len(hy)):
                    rate = np.where(mid_q, mq[k], hy[k]) * (1 - bonus) + (bonus if k == 0 else 0)
                    for tt, share in enumerate(annual_to_quarters((1.0,), y_q1 + 4 * k, T)):
                        if share:
                            tax_dep[tt] = tax_dep[tt] + five[t] * rate * share
                for k in range(T - t):
                    frac = np.asarray(1.0 / (life * 4)) * (k < life * 4)
                    book_dep[t + k] = book_dep[t + k] + five[t] * frac
        for t in range(T):
            if np.any(np.asarray(own_campus[t]) != 0):
                in_service = max(t, math.ceil(max(campus_online.values(), default=t)))
                month = 3 * ((q0 + in_service) % 4) + 2
                rates = real_property_rates(month)
                for k, r in enumerate(rates[:3]):
                    yq1 = in_service - (q0 + in_service) % 4 + 4 * k
                    for tt, share in enumerate(annual_to_quarters((r,), yq1, T)):
                        tax_dep[tt] = tax_dep[tt] + own_campus[t] * share
                for k, f in enumerate(book_straight_line(float(np.median(blife)), T - in_service)):
                    book_dep[in_service + k] = book_dep[in_service + k] + own_campus[t] * f

        # Financing: cash in, interest, SPV leases and the company's SPV equity share.
        fin_in, interest = [z] * T, [z] * T
        for i, f in enumerate(s.financing):
            t0 = qindex(f.quarter) - q0
            amount = get(f"financing.{i}.amount_b")
            coupon = get(f"financing.{i}.coupon")
            peq = get(f"financing.{i}.partner_equity_b")
            if f.kind == "private_credit_spv" and f.off_balance_sheet:
                share = get(f"financing.{i}.partner_share")
                fin_in[t0] = fin_in[t0] - peq * (1 - share) / np.maximum(share, 1e-9)
                online = [campus_online[c.name] for c in s.campuses if c.financed_by == f.name]
                first = math.ceil(min(online, default=t0))
                for t in range(max(first, t0), T):
                    lease_q[t] = lease_q[t] + (amount + peq) * get(f"financing.{i}.lease_yield") / 4
            else:
                fin_in[t0] = fin_in[t0] + amount + (peq if f.kind == "private_credit_spv" else 0)
                if f.kind != "equity":
                    for t in range(t0 + 1, min(T, t0 + 4 * f.years + 1)):
                        interest[t] = interest[t] + amount * coupon / 4
                    if t0 + 4 * f.years < T:
                        fin_in[t0 + 4 * f.years] = fin_in[t0 + 4 * f.years] - amount
            window = [qindex(q) - q0 for q in s.burn_window] or list(range(max(t0 - 2, 0), t0))
            burn = sum(capex[t] for t in window) / (3 * max(len(window), 1))
            out[f"financing.{f.name}.months_of_capex_covered"] = (amount + peq) / burn
            out[f"financing.{f.name}.monthly_burn_b"] = burn

        # Tax, operating and free cash flow, cash by quarter.
        state, cash = TaxState(), get("company.cash_start_b")
        for t, lab in enumerate(labels):
            y = int(lab[:4])
            ebitda = get(f"company.ebitda_b.{y}") / 4 - lease_q[t]
            taxes, state = period_tax(
                ebitda=ebitda,
                tax_depreciation=tax_dep[t],
                book_depreciation=book_dep[t],
                interest=interest[t],
                state=state,
            )
            ocf = ebitda - taxes["tax"] - interest[t]
            fcf = ocf - capex[t]
            returns = (
                get(f"company.shareholder_returns_b.{y}") / 4
                if y in s.company.shareholder_returns_b
                else 0.0
            )
            cash = cash + fcf + fin_in[t] - returns
            if lab in s.company.cash_actual_b:
                out[f"{lab}.cash_unexplained_b"] = get(f"company.cash_actual_b.{lab}") - cash
                cash = get(f"company.cash_actual_b.{lab}") + 0 * cash
            row = {
                "capex_b": capex[t],
                "capex_accelerators_b": acc_capex[t],
                "capex_own_campuses_b": own_campus[t],
                "capex_other_b": other[t],
                "tax_depreciation_b": tax_dep[t],
                "book_depreciation_b": book_dep[t],
                "interest_b": interest[t],
                "lease_b": lease_q[t],
                "tax_b": taxes["tax"],
                "ocf_b": ocf,
                "fcf_b": fcf,
                "financing_b": fin_in[t],
                "returns_b": returns,
                "cash_b": cash,
                "fleet_units": get("fleet_start_units") + sum(units_q[: t + 1]),
                "months_of_capex_in_cash": cash / (capex[t] / 3),
                # Power of the accelerators bought since the scenario's start (not the
                # starting fleet, whose chip mix is unknown): IT load, then x PUE.
                "added_it_gw": sum(it_gw_q[: t + 1]),
                "added_facility_gw": sum(it_gw_q[: t + 1]) * pue,
            }
            for k, v in row.items():
                out[f"{lab}.{k}"] = v
                if k not in STOCKS:
                    out[f"{y}.{k}"] = out.get(f"{y}.{k}", 0.0) + v
        return {k: np.asarray(v, dtype=float) for k, v in out.items()}

    return run
