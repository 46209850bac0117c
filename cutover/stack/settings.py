"""The reference stack's routing settings files, as strict models.

``routing.toml`` holds the routing report's indicative rates and the gateway-health policy;
``gateways.toml`` the gateways' prices and data residency (and, for the simulator only, their
true success rates). Both are edited by people, so both refuse unknown keys and name the key.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from cutover.config import StrictModel, config_model

Positive = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, le=1)]


class ReportSection(StrictModel):
    """Settings of the routing report (never of a decision)."""

    units_per_usd: dict[str, Positive] = Field(
        description="INDICATIVE units of each currency per US dollar, for headline totals only")


class HealthSection(StrictModel):
    """When routing skips a gateway whose recent outcomes say it is failing."""

    settle_delay_s: int = Field(gt=0, description="an outcome becomes known this long after"
                                                  " its payment")
    window_s: int = Field(gt=0, description="the window a gateway trips on")
    outcomes_min: int = Field(ge=1, description="outcomes needed in window_s to trip")
    trip_below: Share = Field(description="trip when the success share falls below this")
    recover_window_s: int = Field(gt=0, description="the window a gateway recovers on")
    recover_outcomes_min: int = Field(ge=1, description="outcomes needed to recover")
    recover_at: Share = Field(description="recover when the success share reaches this")

    @model_validator(mode="after")
    def _ordered(self) -> HealthSection:
        if self.trip_below > self.recover_at:
            raise ValueError("needs 0 <= trip_below <= recover_at <= 1")
        return self


@config_model("routing settings", "cutover/fixtures/routing.toml")
class RoutingFile(StrictModel):
    """Routing report rates and the gateway-health policy of the reference stack."""

    report: ReportSection
    health: HealthSection


class GatewaySpec(StrictModel):
    """One gateway: price and where it may process."""

    fee_bps: int = Field(ge=0, le=10_000, description="variable fee in basis points")
    fixed_minor: dict[str, Annotated[int, Field(ge=0)]] = Field(
        description="currency -> fixed fee in minor units")
    regions: list[str] = Field(min_length=1, description="regions it may process (data residency)")
    sim_success: dict[str, Share] = Field(
        default_factory=dict, description="SIMULATOR ONLY: true success by region (`base`"
                                          " otherwise); the stack never reads it")


@config_model("gateways", "cutover/fixtures/gateways.toml")
class GatewaysFile(StrictModel):
    """Gateways, regions and the home currency of each country."""

    regions: dict[str, list[str]] = Field(description="region -> ISO 3166 alpha-2 countries")
    currencies: dict[str, str] = Field(default_factory=dict,
                                       description="country -> home currency (simulator)")
    gateways: dict[str, GatewaySpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_regions(self) -> GatewaysFile:
        for name, spec in self.gateways.items():
            unknown = sorted(set(spec.regions) - set(self.regions))
            if unknown:
                raise ValueError(f"gateway {name}: regions {unknown} are not in [regions]"
                                 f" ({', '.join(sorted(self.regions))})")
        return self
