"""The fleet model: a scenario's quarters -> chips, power, capex, depreciation, tax, cash.

``uncertain_inputs(s)`` lists every range in the scenario by dotted path (catalog
price ranges included); ``fleet_model(s)`` returns a function of those paths
(``**{"company.capex_b.2025": array}``) computing every output at once over
Monte Carlo draws, so ``montecarlo.simulate`` and ``tornado`` apply unchanged.

The fleet is counted two ways side by side: H100-equivalents (dense BF16 peak over the
H100 SXM's) and physical accelerators (``fleet_h100e``, ``fleet_chips``); a purchase in
H100e becomes chips through its ``h100e_per_chip`` (a mix) or its accelerator's ratio.
Cash pays, by quarter: capex, buybacks, dividends (a year's total, its reported quarters
in place) and investments; a quarter with reported operating cash flow uses it instead
of EBITDA - tax - interest (``ocf_model_gap_b`` is the model's miss). At each reported
cash figure the model's cash (``cash_modelled_b``) is reset, and the difference is
``cash_unexplained_b``: what the named flows do not account for.

Simplifications, stated: all non-campus capex (accelerators, rest of the servers,
network, other) is 5-year MACRS property and books over the server life; each own
campus's spend is 39-year real property from that campus's median online quarter; a
tax year's deductions and EBITDA spread evenly over its quarters; taxes are paid in
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
STOCKS = (
    "cash_b",
    "fleet_units",
    "fleet_h100e",
    "fleet_chips",
    "h100e_per_chip",
    "added_chips",
    "months_of_capex_in_cash",
    "added_it_gw",
    "added_facility_gw",
)


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


def _fleet_start(s: Scenario, get: Callable[[str], Any]) -> tuple[Any, Any]:
    """The starting fleet in H100e and in physical chips (None when not given)."""
    start = get("fleet_start_units")
    if s.units == "h100e":
        return start, None if s.fleet_start_chips is None else get("fleet_start_chips")
    return None if s.fleet_start_h100e is None else get("fleet_start_h100e"), start


def fleet_model(s: Scenario) -> Callable[..., dict[str, Any]]:
    """A function of the uncertain inputs (by path) returning every output (by name)."""
    q0, T = qindex(s.start), qindex(s.end) - qindex(s.start) + 1
    labels = [f"{(q0 + t) // 4}Q{(q0 + t) % 4 + 1}" for t in range(T)]
    years = sorted({int(lab[:4]) for lab in labels})

    def run(**values: Any) -> dict[str, Any]:
        get = _getter(s, values)
        z = 0.0
        out: dict[str, Any] = {}
        acc_capex, it_gw_q = [z] * T, [z] * T
        h100e_q, chips_q = [z] * T, [z] * T  # added each quarter, H100e and physical chips
        for i, p in enumerate(s.accelerators):
            acc = get_accelerator(p.accelerator)
            nominal = acc.h100_equivalents()  # the named chip's H100e
            mix = nominal if p.h100e_per_chip is None else get(f"accelerators.{i}.h100e_per_chip")
            qs = [qindex(p.quarter)] if p.quarter else [p.year * 4 + k for k in range(4)]
            units, price = get(f"accelerators.{i}.units"), get(f"accelerators.{i}.price_usd")
            year = (p.year or int(p.quarter[:4])) if p.quarter or p.year else 0
            if p.unit == "h100e":  # physical chips = H100e / the mix's H100e per chip
                h100e, physical = units, units / mix
                chips = units / nominal  # power: the named chip's per H100e (module doc)
            else:
                h100e, physical, chips = units * mix, units, units
            for q in qs:
                if 0 <= q - q0 < T:
                    acc_capex[q - q0] = acc_capex[q - q0] + units * price / 1e9 / len(qs)
                    h100e_q[q - q0] = h100e_q[q - q0] + h100e / len(qs)
                    chips_q[q - q0] = chips_q[q - q0] + physical / len(qs)
                    it_gw = chips * (acc.all_in_power_w() or 0.0) / 1e9 / len(qs)
                    it_gw_q[q - q0] = it_gw_q[q - q0] + it_gw
            pre = f"{year}."
            add = {
                "new_units": h100e if s.units == "h100e" else physical,
                "new_h100e": h100e,
                "new_chips": physical,
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
        own_by_campus: dict[str, list[Any]] = {}  # each own campus's spend by quarter
        campus_online: dict[str, float] = {}
        for i, c in enumerate(s.campuses):
            gw, cost = get(f"campuses.{i}.capacity_gw"), get(f"campuses.{i}.cost_per_gw_b")
            nb = np.ceil(np.asarray(get(f"campuses.{i}.build_months"), dtype=float) / 3.0)
            start = qindex(c.start) - q0
            spend = [z] * T
            for k in range(int(np.max(nb))):
                if 0 <= start + k < T and c.financed_by is None:
                    spend[start + k] = gw * cost * (k < nb) / nb
                    own_campus[start + k] = own_campus[start + k] + spend[start + k]
            if c.financed_by is None:
                own_by_campus[c.name] = spend
            for t in range(T):
                online_gw[t] = online_gw[t] + gw * (t >= start + nb)
            campus_online[c.name] = float(np.median(start + nb))
        out.update({f"{lab}.campus_online_gw": online_gw[t] for t, lab in enumerate(labels)})

        # Company capex, buybacks, dividends by quarter: actuals, else the year's rest evenly.
        def by_quarter(field: str, actuals: dict[str, Any], totals: dict[int, Any]) -> list[Any]:
            flow = [z] * T
            for y in years:
                qs = [t for t, lab in enumerate(labels) if lab.startswith(str(y))]
                known = sum(
                    get(f"company.{field}_actual_b.{labels[t]}") for t in qs if labels[t] in actuals
                )
                rest = [t for t in qs if labels[t] not in actuals]
                total = get(f"company.{field}_b.{y}") if y in totals else None
                for t in qs:
                    if labels[t] in actuals:
                        flow[t] = get(f"company.{field}_actual_b.{labels[t]}")
                    elif total is not None:
                        flow[t] = (total - known) / len(rest)
            return flow

        co = s.company
        capex = by_quarter("capex", co.capex_actual_b, co.capex_b)
        buybacks = by_quarter("buybacks", co.buybacks_actual_b, co.buybacks_b)
        dividends = by_quarter("dividends", co.dividends_actual_b, co.dividends_b)
        investments = [z] * T
        for i, inv in enumerate(co.investments):
            t = qindex(inv.quarter) - q0
            investments[t] = investments[t] + get(f"company.investments.{i}.amount_b")
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
        # Own campuses: 39-year real property and book straight line, each campus's spend
        # from the quarter that campus is placed in service (its median online quarter).
        for name, spend in own_by_campus.items():
            online = math.ceil(campus_online[name])
            for t in range(T):
                in_service = max(t, online)
                if in_service >= T or not np.any(np.asarray(spend[t]) != 0):
                    continue
                month = 3 * ((q0 + in_service) % 4) + 2
                rates = real_property_rates(month)
                for k, r in enumerate(rates[: (T - in_service) // 4 + 2]):
                    yq1 = in_service - (q0 + in_service) % 4 + 4 * k
                    for tt, share in enumerate(annual_to_quarters((r,), yq1, T)):
                        tax_dep[tt] = tax_dep[tt] + spend[t] * share
                for k, f in enumerate(book_straight_line(float(np.median(blife)), T - in_service)):
                    book_dep[in_service + k] = book_dep[in_service + k] + spend[t] * f

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

        # Tax, operating and free cash flow, uses of cash, cash by quarter.
        state, cash = TaxState(), get("company.cash_start_b")
        h100e_start, chips_start = _fleet_start(s, get)
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
            if lab in co.ocf_actual_b:  # reported: taxes, working capital, interest as paid
                out[f"{lab}.ocf_model_gap_b"] = ocf - get(f"company.ocf_actual_b.{lab}")
                ocf = get(f"company.ocf_actual_b.{lab}") + 0 * ocf
            fcf = ocf - capex[t]
            returns = (
                get(f"company.shareholder_returns_b.{y}") / 4
                if y in co.shareholder_returns_b
                else 0.0
            )
            returns = returns + buybacks[t] + dividends[t]
            cash = cash + fcf + fin_in[t] - returns - investments[t]
            if lab in co.cash_actual_b:
                out[f"{lab}.cash_modelled_b"] = cash
                out[f"{lab}.cash_unexplained_b"] = get(f"company.cash_actual_b.{lab}") - cash
                cash = get(f"company.cash_actual_b.{lab}") + 0 * cash
            h100e = None if h100e_start is None else h100e_start + sum(h100e_q[: t + 1])
            chips = None if chips_start is None else chips_start + sum(chips_q[: t + 1])
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
                "buybacks_b": buybacks[t],
                "dividends_b": dividends[t],
                "investments_b": investments[t],
                "cash_b": cash,
                "fleet_units": h100e if s.units == "h100e" else chips,
                "fleet_h100e": h100e,
                "fleet_chips": chips,
                "h100e_per_chip": None if chips is None or h100e is None else h100e / chips,
                "added_chips": sum(chips_q[: t + 1]),
                "months_of_capex_in_cash": cash / (capex[t] / 3),
                # Power of the accelerators bought since the scenario's start (not the
                # starting fleet, whose chip mix is unknown): IT load, then x PUE.
                "added_it_gw": sum(it_gw_q[: t + 1]),
                "added_facility_gw": sum(it_gw_q[: t + 1]) * pue,
            }
            for k, v in row.items():
                if v is None:
                    continue
                out[f"{lab}.{k}"] = v
                if k not in STOCKS:
                    out[f"{y}.{k}"] = out.get(f"{y}.{k}", 0.0) + v
        return {k: np.asarray(v, dtype=float) for k, v in out.items()}

    return run
