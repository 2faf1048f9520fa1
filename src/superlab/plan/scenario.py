"""The fleet scenario schema (pydantic) and its loader: errors name the file, line and field.

Money is in $ billions (``_b``), power in GW, time in calendar quarters ("2025Q3").
Any number may be a range ``[low, high]`` or a distribution (see ``montecarlo.Dist``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from superlab.config.load import explain, line_index
from superlab.config.section import FieldError
from superlab.plan.catalog import get_accelerator
from superlab.plan.montecarlo import Dist, as_input, quantile

# Build time by build type: modular / "tent" halls 6-9 months, traditional
# 18-24 months (SemiAnalysis on Meta's tents, 2025; industry norm for shells).
BUILD_MONTHS = {"modular": (6.0, 9.0), "traditional": (18.0, 24.0)}
QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")


def _nonnegative(value: Any) -> float | Dist:
    x = as_input(value)
    low = x.low if isinstance(x, Dist) else x
    if low < 0:
        raise ValueError(f"must be >= 0, got {value!r}")
    return x


def fraction(value: Any) -> float | Dist:
    x = _nonnegative(value)
    if (x.high if isinstance(x, Dist) else x) > 1:
        raise ValueError(f"must be in [0, 1], got {value!r}")
    return x


Number = Annotated[Any, BeforeValidator(as_input)]
Amount = Annotated[Any, BeforeValidator(_nonnegative)]
Fraction = Annotated[Any, BeforeValidator(fraction)]
Quarter = Annotated[str, Field(pattern=QUARTER_RE.pattern)]


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names file, line and dotted field."""


def qindex(quarter: str) -> int:
    """Quarters since year 0: 2025Q1 -> 8100."""
    m = QUARTER_RE.match(quarter)
    if not m:
        raise ValueError(f"not a quarter like 2025Q1: {quarter!r}")
    return int(m.group(1)) * 4 + int(m.group(2)) - 1


def p50(x: float | Dist) -> float:
    """The median of a number or distribution."""
    return quantile(x, 0.5)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Investment(Section):
    """Cash paid for a stake in another company (Meta's 49% of Scale AI), in one quarter."""

    name: str
    quarter: Quarter
    amount_b: Amount


class Company(Section):
    """The company's cash, earnings, capex and uses of cash ($B; by year or by quarter).

    A ``*_b`` figure by year is the year's total; its ``*_actual_b`` quarters replace their
    share and the rest of the year is spread evenly over the other quarters.
    """

    cash_start_b: Amount
    marketable_securities_b: Amount = 0.0  # reported, never counted as cash
    cash_actual_b: dict[Quarter, Amount] = {}  # reconcile the model to reported cash
    ebitda_b: dict[int, Number]
    # Reported operating cash flow replaces EBITDA - tax - interest in its quarter.
    ocf_actual_b: dict[Quarter, Number] = {}
    capex_b: dict[int, Amount]
    capex_actual_b: dict[Quarter, Amount] = {}
    buybacks_b: dict[int, Amount] = {}
    buybacks_actual_b: dict[Quarter, Amount] = {}
    dividends_b: dict[int, Amount] = {}
    dividends_actual_b: dict[Quarter, Amount] = {}
    shareholder_returns_b: dict[int, Amount] = {}  # buybacks + dividends, when not split
    investments: list[Investment] = []

    @model_validator(mode="after")
    def _actuals_within_totals(self) -> Company:
        for field in ("capex", "buybacks", "dividends"):
            totals, actuals = getattr(self, f"{field}_b"), getattr(self, f"{field}_actual_b")
            for y, total in totals.items():
                known = sum(p50(v) for q, v in actuals.items() if q.startswith(str(y)))
                n = sum(q.startswith(str(y)) for q in actuals)
                if n < 4 and known > p50(total) + 1e-9:
                    raise FieldError(
                        f"{field}_b.{y}",
                        f"{field} {y} total ({p50(total):g}, median) is below its quarterly "
                        f"actuals ({known:g})",
                    )
        return self


class Purchase(Section):
    """Accelerators bought in a year (spread evenly over its quarters) or one quarter."""

    name: str
    year: int | None = None
    quarter: Quarter | None = None
    units: Amount
    unit: Literal["chips", "h100e"] = "chips"
    accelerator: str = "h100-sxm"
    # A mix of chips bought under one name: its mean H100e per physical chip (default:
    # the named accelerator's). Sets the physical count; power and price stay per unit.
    h100e_per_chip: Amount | None = None
    price_usd: Amount | None = None  # per unit; None = the catalog's price range
    campus: str | None = None

    @model_validator(mode="after")
    def _when(self) -> Purchase:
        if (self.year is None) == (self.quarter is None):
            raise FieldError("year", "give exactly one of 'year' or 'quarter'")
        acc = get_accelerator(self.accelerator)  # unknown names fail here, listing known ones
        mix = self.h100e_per_chip
        if mix is not None and (mix.low if isinstance(mix, Dist) else mix) <= 0:
            raise FieldError("h100e_per_chip", f"must be > 0, got {mix!r}")
        if self.price_usd is None and acc.price_usd is None:
            raise FieldError("price_usd", f"{acc.name} has no catalog price; give price_usd")
        return self


class PowerSupply(Section):
    grid_gw: Amount = 0.0
    onsite_gw: Amount = 0.0  # contracted on-site generation (a PPA: no capex of ours)


class Campus(Section):
    """A datacenter campus: capacity, build type and time, power sources, cost."""

    name: str
    location: str = ""
    capacity_gw: Amount
    build: Literal["modular", "traditional"] = "traditional"
    build_months: Amount | None = None  # None = BUILD_MONTHS[build]
    start: Quarter
    online_target: Quarter | None = None
    power: PowerSupply
    cost_per_gw_b: Amount  # shell, power distribution and cooling; IT excluded
    financed_by: str | None = None  # name of a private_credit_spv financing

    @model_validator(mode="after")
    def _power_and_dates(self) -> Campus:
        supply = p50(self.power.grid_gw) + p50(self.power.onsite_gw)
        if p50(self.capacity_gw) > supply + 1e-12:
            raise FieldError(
                "capacity_gw",
                f"campus {self.name!r} draws {p50(self.capacity_gw):g} GW but its power supply "
                f"is {supply:g} GW (grid {p50(self.power.grid_gw):g} + on-site "
                f"{p50(self.power.onsite_gw):g})",
            )
        if self.online_target is not None:
            months = self.months()[0]
            if (qindex(self.online_target) - qindex(self.start)) * 3 < months - 3:
                raise FieldError(
                    "online_target",
                    f"{self.online_target} is before start {self.start} + {months:g} months "
                    f"({self.build} build)",
                )
        return self

    def months(self) -> tuple[float, float]:
        """Build time range in months."""
        if self.build_months is None:
            return BUILD_MONTHS[self.build]
        b = self.build_months
        return (b.low, b.high) if isinstance(b, Dist) else (b, b)


class Financing(Section):
    """A bond, private credit through an SPV, or equity raised in one quarter."""

    name: str
    kind: Literal["bond", "private_credit_spv", "equity"]
    quarter: Quarter
    amount_b: Amount  # debt (bond, private credit) or equity raised
    coupon: Fraction = 0.0  # annual
    years: int = Field(default=10, ge=1)
    partner_equity_b: Amount = 0.0  # SPV: the partner's equity beside the debt
    partner_share: Fraction = 0.0  # SPV: the partner's ownership
    off_balance_sheet: bool = True  # SPV: the company leases the campus (operating lease)
    lease_yield: Fraction = 0.0  # SPV: annual lease payment / SPV funding


class Book(Section):
    """Depreciation lives and the bonus-depreciation law."""

    server_life_years: Amount = 5.5
    building_life_years: Amount = 30.0
    bonus_law: Literal["tcja", "obbba"] = "obbba"


class Scenario(Section):
    """A company's AI build-out by quarter: chips, campuses, capex, tax, financing, cash."""

    name: str
    as_of: str = ""
    start: Quarter
    end: Quarter
    units: Literal["chips", "h100e"] = "h100e"
    fleet_start_units: Amount = 0.0  # in ``units``
    # The starting fleet in the other unit, for physical chips and H100e side by side.
    fleet_start_chips: Amount | None = None  # physical accelerators (units: h100e)
    fleet_start_h100e: Amount | None = None  # H100-equivalents (units: chips)
    pue: Amount = 1.2
    homes_per_gw: Amount = 750_000.0
    company: Company
    accelerators: list[Purchase] = []
    campuses: list[Campus] = []
    financing: list[Financing] = []
    depreciation: Book = Field(default_factory=Book)
    burn_window: list[Quarter] = []  # quarters whose capex defines monthly burn

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        lo, hi = qindex(self.start), qindex(self.end)
        if hi < lo:
            raise FieldError("end", f"end {self.end} is before start {self.start}")

        def within(field: str, q: str) -> None:
            if not lo <= qindex(q) <= hi:
                raise FieldError(field, f"{q} is outside {self.start}..{self.end}")

        years = range(lo // 4, hi // 4 + 1)
        for field in ("ebitda_b", "capex_b"):
            missing = [y for y in years if y not in getattr(self.company, field)]
            if missing:
                raise FieldError(
                    f"company.{field}",
                    f"no figure for {', '.join(map(str, missing))} "
                    f"(the horizon runs {self.start}..{self.end})",
                )
        other = "fleet_start_h100e" if self.units == "h100e" else "fleet_start_chips"
        if getattr(self, other) is not None:
            raise FieldError(other, f"units is {self.units}: give fleet_start_units instead")
        for i, p in enumerate(self.accelerators):
            within(f"accelerators.{i}.quarter", p.quarter or f"{p.year}Q1")
        for i, inv in enumerate(self.company.investments):
            within(f"company.investments.{i}.quarter", inv.quarter)
        for field in ("capex", "buybacks", "dividends", "ocf"):
            for q in getattr(self.company, f"{field}_actual_b"):
                within(f"company.{field}_actual_b.{q}", q)
        for i, f in enumerate(self.financing):
            within(f"financing.{i}.quarter", f.quarter)
        for q in self.company.cash_actual_b:
            within(f"company.cash_actual_b.{q}", q)
        for q in self.burn_window:
            within("burn_window", q)
        spvs = {f.name for f in self.financing if f.kind == "private_credit_spv"}
        campuses = {c.name: c for c in self.campuses}
        for i, c in enumerate(self.campuses):
            if c.financed_by is not None and c.financed_by not in spvs:
                raise FieldError(f"campuses.{i}.financed_by", f"no SPV financing {c.financed_by!r}")
        load: dict[str, float] = {}
        for i, p in enumerate(self.accelerators):
            if p.campus is None:
                continue
            if p.campus not in campuses:
                raise FieldError(f"accelerators.{i}.campus", f"no campus named {p.campus!r}")
            load[p.campus] = load.get(p.campus, 0.0) + facility_gw(self, p)
            cap = p50(campuses[p.campus].capacity_gw)
            if load[p.campus] > cap:
                raise FieldError(
                    f"accelerators.{i}.units",
                    f"accelerators at campus {p.campus!r} draw {load[p.campus]:.3g} GW "
                    f"(all-in x PUE, median) but it has {cap:g} GW",
                )
        return self


def facility_gw(s: Scenario, p: Purchase) -> float:
    """Median facility power of a purchase: units -> chips x all-in power x PUE."""
    acc = get_accelerator(p.accelerator)
    chips = p50(p.units) / (acc.h100_equivalents() if p.unit == "h100e" else 1.0)
    return chips * (acc.all_in_power_w() or 0.0) * p50(s.pue) / 1e9


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML; raise ScenarioError naming file:line: field."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario file not found")
    text = path.read_text("utf-8")
    try:
        raw = yaml.safe_load(text)
        lines = line_index(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise ScenarioError(f"{path}: invalid YAML: {e}") from None
    try:
        return Scenario.model_validate(raw)
    except ValidationError as e:
        raise ScenarioError(explain(e, Scenario, path, lines)) from None
