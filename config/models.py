"""Typed, frozen, validated configuration for one profile (SPEC §1–§6).

Every number the daemon trades by lives here with its SPEC default supplied by the
TOML profile; code reads it from these models and never from literals. A model is
validated whole: a wrong key, an impossible value or an inconsistent table is an error
that names the key.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # ---- input hardening (Part 8): strict booleans, no empty paths -------------------------------
    # pydantic's lax mode reads "yes", "on", 1 and "1" as true: a config that says `live = "yes"`
    # must be an error, not a live account. And an empty path (`TRADINGD_DAEMON__STATE_DIR=`) is a
    # mistake that would otherwise mean "the current directory".
    @field_validator("*", mode="before")
    @classmethod
    def _strict_input(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name or ""
        field = cls.model_fields.get(name)
        if field is not None and field.annotation is bool and not isinstance(value, bool):
            raise ValueError(f"must be true or false (a TOML boolean), got {value!r}")
        # (a field whose own default is "" uses empty to mean "not set": it keeps that meaning)
        if _is_path_field(name) and isinstance(value, str) and not value.strip() and field is not None \
                and field.default != "":
            raise ValueError("must not be empty")
        return value


Pct = Decimal  # a fraction: 0.20 means 20 %

_PATH_SUFFIXES = ("_dir", "_file", "_path", "url")


def _is_path_field(name: str) -> bool:
    """Fields naming a file, folder or database URL (input hardening, Part 8): never empty."""
    return name.endswith(_PATH_SUFFIXES)


class Threshold(Frozen):
    """One row of a step table: when the input passes `at`, `value` applies."""

    at: Decimal
    value: Decimal


class VixBand(Frozen):
    """A VIX regime band: applies while VIX < `lt` (or <= `le`); the last band has neither."""

    lt: Decimal | None = None
    le: Decimal | None = None
    cap: Decimal


# --------------------------------------------------------------------------- profile


class ExpiryConfig(Frozen):
    """Which listed expiry to trade: the one closest to `target_dte` calendar days within [min, max]."""

    target_dte: int = Field(ge=0)
    min_dte: int = Field(ge=0)
    max_dte: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> ExpiryConfig:
        if not (self.min_dte <= self.target_dte <= self.max_dte):
            raise ValueError("expiry: need min_dte <= target_dte <= max_dte")
        return self


class ProfileInfo(Frozen):
    name: Literal["0dte", "7dte"]
    description: str = ""
    underlyings: tuple[str, ...] = Field(min_length=1)
    vix_symbol: str = "VIX"
    expiry: ExpiryConfig
    contract_multiplier: int = Field(default=100, gt=0)
    # --- room replay (issue 10): index underlyings this profile may trade when enabled (SPEC §1: SPX
    # with same-day SPXW options, cash-settled, European, index quotes). Empty: none.
    index_underlyings: tuple[str, ...] = ()


class CapitalConfig(Frozen):
    """The capital base sizing is measured against.

    fixed: `account_size` always. equity: `starting_capital` + realized P&L.
    broker: the broker's net liquidation.
    """

    source: Literal["fixed", "equity", "broker"]
    account_size: Decimal = Field(gt=0)


class SizingConfig(Frozen):
    min_bet_pct: Pct = Field(gt=0, le=1)
    min_bet_floor: Decimal = Field(default=Decimal(0), ge=0)
    max_bet_pct: Pct = Field(gt=0, le=1)
    max_positions: int = Field(gt=0)
    max_positions_per_underlying: int = Field(gt=0)
    max_exposure_pct: Pct = Field(gt=0, le=1)
    # 7dte correlation-aware exposure caps (SPEC §1, §2.5); None disables.
    max_exposure_pct_moderate: Pct | None = Field(default=None, gt=0, le=1)
    max_exposure_pct_high: Pct | None = Field(default=None, gt=0, le=1)
    per_underlying_alloc_pct: Pct | None = Field(default=None, gt=0, le=1)
    # 0dte exposure factor (SPEC §2.2); None disables.
    exposure_factor_threshold_pct: Pct | None = Field(default=None, gt=0, le=1)
    exposure_factor: Decimal = Field(default=Decimal(1), gt=0, le=1)

    @model_validator(mode="after")
    def _consistent(self) -> SizingConfig:
        if self.min_bet_pct > self.max_bet_pct:
            raise ValueError("sizing.min_bet_pct must not exceed sizing.max_bet_pct")
        if self.max_positions_per_underlying > self.max_positions:
            raise ValueError("sizing.max_positions_per_underlying must not exceed sizing.max_positions")
        if self.max_bet_pct > self.max_exposure_pct:
            raise ValueError("sizing.max_bet_pct must not exceed sizing.max_exposure_pct")
        if self.max_exposure_pct_moderate is not None and self.max_exposure_pct_moderate > self.max_exposure_pct:
            raise ValueError("sizing.max_exposure_pct_moderate must not exceed sizing.max_exposure_pct")
        if (
            self.max_exposure_pct_high is not None
            and self.max_exposure_pct_moderate is not None
            and self.max_exposure_pct_high > self.max_exposure_pct_moderate
        ):
            raise ValueError("sizing.max_exposure_pct_high must not exceed sizing.max_exposure_pct_moderate")
        return self


class GateConfig(Frozen):
    confidence_threshold: Decimal = Field(ge=0, le=1)
    vix_max_entry: Decimal | None = Field(default=None, gt=0)  # 0dte: entries stop above
    max_quote_age_s: Decimal = Field(gt=0)
    default_ttl_s: int = Field(default=60, gt=0)
    # A signal dated further ahead of our clock than this is refused: it would outlive its ttl.
    max_clock_skew_s: Decimal = Field(default=Decimal(5), ge=0)
    # 0dte portfolio greek limits in share-equivalents (Σ greek × multiplier × contracts).
    max_abs_delta: Decimal | None = Field(default=None, gt=0)
    max_gamma: Decimal | None = Field(default=None, gt=0)


class FundamentalsConfig(Frozen):
    """7dte seeds' fundamental score (SPEC §2.2).

    Surprise and analyst thresholds are in percent units, like the signal's
    `earnings_surprise_pct`, `analyst_buy_pct`, `analyst_sell_pct` (12 means 12 %).
    `surprise_steps`: rows with at > 0 fire when surprise > at (largest first wins);
    rows with at < 0 fire when surprise < at (most negative first wins); only one fires.
    """

    enabled: bool = False
    base_score: Decimal = Decimal("0.5")
    surprise_steps: tuple[Threshold, ...] = ()  # at > 0: surprise > at adds value; at < 0: surprise < at adds value
    analyst_buy_above: Decimal = Decimal(70)
    analyst_buy_bonus: Decimal = Decimal("0.1")
    analyst_sell_above: Decimal = Decimal(50)
    analyst_sell_penalty: Decimal = Decimal("-0.1")
    pe_cheap_ratio: Decimal = Decimal("0.7")
    pe_cheap_bonus: Decimal = Decimal("0.1")
    pe_rich_ratio: Decimal = Decimal("1.5")
    pe_rich_penalty: Decimal = Decimal("-0.1")


class MultiplierConfig(Frozen):
    # confidence >= at -> value, checked from the highest `at` down; below all -> base.
    confidence_tiers: tuple[Threshold, ...]
    base: Decimal = Decimal(1)
    fundamentals: FundamentalsConfig = FundamentalsConfig()
    # VIX factor (0dte): above rows apply when VIX > at (highest first); below rows when VIX < at.
    vix_factor_above: tuple[Threshold, ...] = ()
    vix_factor_below: tuple[Threshold, ...] = ()
    # VIX regime caps, first matching band wins; empty disables (7dte).
    vix_regime_caps: tuple[VixBand, ...] = ()
    strategy_caps: dict[Literal["directional", "neutral", "volatility"], Decimal | Literal["vix_regime"]]
    liquidity_caps: dict[str, Decimal] = {}
    cap: Decimal = Field(gt=0)
    floor: Decimal = Decimal(1)
    # correlation factor: average |rho| > at -> value (highest first); below `low_at` -> low_value.
    correlation_above: tuple[Threshold, ...] = ()
    correlation_low_at: Decimal | None = None
    correlation_low_value: Decimal = Decimal(1)
    breaker_cap_level: int = Field(default=1, ge=1, le=4)
    breaker_cap: Decimal = Decimal(1)
    vix_spike_pct: Pct | None = None  # VIX up more than this from the session open caps at vix_spike_cap
    vix_spike_cap: Decimal = Decimal(1)

    @model_validator(mode="after")
    def _consistent(self) -> MultiplierConfig:
        _descending("multiplier.confidence_tiers", self.confidence_tiers)
        _descending("multiplier.vix_factor_above", self.vix_factor_above)
        _descending("multiplier.correlation_above", self.correlation_above)
        for t in self.confidence_tiers:
            if not (0 <= t.at <= 1):
                raise ValueError("multiplier.confidence_tiers: every `at` must be within [0, 1]")
        if self.floor > self.cap:
            raise ValueError("multiplier.floor must not exceed multiplier.cap")
        bounds = [b.lt if b.lt is not None else b.le for b in self.vix_regime_caps[:-1]]
        if any(b is None for b in bounds) or bounds != sorted(bounds):  # type: ignore[type-var]
            raise ValueError("multiplier.vix_regime_caps: bands must rise and each but the last needs lt or le")
        return self


class CorrelationConfig(Frozen):
    lookback_sessions: int = Field(default=60, gt=2)
    moderate_above: Decimal = Decimal("0.6")
    high_above: Decimal = Decimal("0.8")

    @model_validator(mode="after")
    def _ordered(self) -> CorrelationConfig:
        if self.moderate_above > self.high_above:
            raise ValueError("correlation.moderate_above must not exceed correlation.high_above")
        return self


class ScaleInConfig(Frozen):
    enabled: bool = True
    # 0dte: up to pct_of_min_bet of the minimum bet, only while in profit.
    pct_of_min_bet: Pct | None = None
    require_profit: bool = False
    # 7dte: up to pct_of_position of the position, on entry day or within max_days_after_entry.
    pct_of_position: Pct | None = None
    max_days_after_entry: int | None = None


class BreakerLevel(Frozen):
    level: int = Field(ge=1, le=4)
    name: str
    loss_pct: Pct = Field(gt=0, lt=1)  # session P&L at or below -loss_pct × base trips it


class BreakersConfig(Frozen):
    levels: tuple[BreakerLevel, ...]

    @model_validator(mode="after")
    def _ordered(self) -> BreakersConfig:
        if [lv.level for lv in self.levels] != [1, 2, 3, 4]:
            raise ValueError("breakers.levels must list levels 1, 2, 3, 4 in order")
        losses = [lv.loss_pct for lv in self.levels]
        if losses != sorted(losses) or len(set(losses)) != len(losses):
            raise ValueError("breakers.levels: loss_pct must strictly rise with the level")
        return self


class PositionLevelsConfig(Frozen):
    """Per-position loss levels on premium (SPEC §3). Negative fractions."""

    alert_pct: Decimal = Field(lt=0)
    close_half_pct: Decimal = Field(lt=0)
    close_half_share: Pct = Field(default=Decimal("0.5"), gt=0, lt=1)
    hard_stop_pct: Decimal = Field(lt=0)

    @model_validator(mode="after")
    def _ordered(self) -> PositionLevelsConfig:
        if not (self.alert_pct > self.close_half_pct > self.hard_stop_pct > -1):
            raise ValueError("position_levels: need 0 > alert_pct > close_half_pct > hard_stop_pct > -1")
        return self


# --------------------------------------------------------------------------- exits


class Tier(Frozen):
    target: Decimal = Field(gt=0)  # profit on premium, 0.05 = +5 %
    share: Pct = Field(gt=0, le=1)


class TierBand(Frozen):
    """Tiers for positions entered at or after `starts` (until the next band starts)."""

    starts: time
    tiers: tuple[Tier, ...] = Field(min_length=1)


class HoursScale(Frozen):
    below_hours: Decimal = Field(gt=0)
    scale: Decimal = Field(gt=0)


class ZeroDteExitsConfig(Frozen):
    bands: tuple[TierBand, ...] = Field(min_length=1)
    vix_low: Decimal = Decimal(15)
    vix_low_scale: Decimal = Decimal("0.8")
    vix_high: Decimal = Decimal(25)
    vix_high_scale: Decimal = Decimal("1.4")
    time_compression: tuple[HoursScale, ...] = ()  # hours to close < below_hours -> scale (tightest first)
    held_over_hours: Decimal = Decimal(3)
    held_scale: Decimal = Decimal("0.9")
    closeout_time: time = time(15, 45)  # flat BY this time (SPEC §5.1), not "start closing at"
    closeout_before_early_close_min: int = Field(default=15, ge=0)
    # The close-out starts this long before `closeout_time` so the sliced exit is done by it. Absent
    # from the profile: the execution's `parent_timeout_s`, the time §4.2's sizing lets a parent take.
    closeout_lead_s: Decimal = Field(default=Decimal(0), ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> ZeroDteExitsConfig:
        starts = [b.starts for b in self.bands]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ValueError("exits.zero_dte.bands: `starts` must strictly rise")
        for i, band in enumerate(self.bands):
            total = sum((t.share for t in band.tiers), Decimal(0))
            if total != 1:
                raise ValueError(f"exits.zero_dte.bands[{i}].tiers: shares sum to {total}, not 1 (100%)")
            targets = [t.target for t in band.tiers]
            if targets != sorted(targets) or len(set(targets)) != len(targets):
                raise ValueError(f"exits.zero_dte.bands[{i}].tiers: targets must strictly rise")
        hours = [h.below_hours for h in self.time_compression]
        if hours != sorted(hours):
            raise ValueError("exits.zero_dte.time_compression: below_hours must rise")
        if self.vix_low > self.vix_high:
            raise ValueError("exits.zero_dte.vix_low must not exceed vix_high")
        return self


class DteScale(Frozen):
    max_dte: int = Field(ge=0)
    scale: Decimal = Field(gt=0)


class SevenDteExitsConfig(Frozen):
    thresholds: tuple[Tier, ...] = Field(min_length=1)
    dte_scaling: tuple[DteScale, ...] = ()  # dte <= max_dte -> scale (smallest max_dte first)
    earnings_scale: Decimal = Decimal("0.75")
    initial_stop_pct: Pct = Field(gt=0, lt=1)
    r_multiples: tuple[Threshold, ...]  # peak profit >= at -> R = value (highest first)
    trail_locks: tuple[Threshold, ...]  # peak profit >= at -> lock value of the gain (highest first)
    last_day_dte: int = 1
    last_day_lock: Pct = Decimal("0.5")
    last_day_floor: Decimal = Decimal("0.9")  # stop no lower than entry × this
    expiry_close_time: time = time(15, 30)
    expiry_close_before_early_close_min: int = Field(default=30, ge=0)  # half days: this long before the early close
    overnight_gap_pct: Pct = Decimal("0.03")

    @model_validator(mode="after")
    def _consistent(self) -> SevenDteExitsConfig:
        total = sum((t.share for t in self.thresholds), Decimal(0))
        if total > 1:
            raise ValueError(f"exits.seven_dte.thresholds: shares sum to {total}, more than 1 (100%)")
        targets = [t.target for t in self.thresholds]
        if targets != sorted(targets) or len(set(targets)) != len(targets):
            raise ValueError("exits.seven_dte.thresholds: targets must strictly rise")
        dtes = [d.max_dte for d in self.dte_scaling]
        if dtes != sorted(dtes):
            raise ValueError("exits.seven_dte.dte_scaling: max_dte must rise")
        _descending("exits.seven_dte.r_multiples", self.r_multiples)
        _descending("exits.seven_dte.trail_locks", self.trail_locks)
        return self


class ExitsConfig(Frozen):
    zero_dte: ZeroDteExitsConfig | None = None
    seven_dte: SevenDteExitsConfig | None = None


# --------------------------------------------------------------------------- execution


class LiquidityConfig(Frozen):
    max_spread_pct: Pct = Field(gt=0)
    small_mid_below: Decimal = Field(gt=0)
    max_spread_abs_small: Decimal = Field(gt=0)
    min_open_interest: int = Field(ge=0)
    max_quote_age_s: Decimal = Field(gt=0)
    strikes_each_side: int = Field(ge=0)


class MultilegConfig(Frozen):
    """SPEC §9: neutral (iron condor) and volatility (long straddle / strangle) as combo positions."""

    # On: the sim, replay and the core trade combos end to end (lifecycle tests for all three
    # families). `ib` sends them as BAG orders (room `combos`).
    enabled: bool = True
    strangle_steps: int = Field(default=1, ge=1)  # the strangle's strikes, this many out from the money
    condor_short_delta: Decimal = Field(default=Decimal("0.20"), gt=0, lt=1)
    condor_wing_width: Decimal = Field(default=Decimal(5), gt=0)  # $ of strike beyond each short
    condor_search_strikes: int = Field(default=8, ge=1)  # strikes each side scanned for the short delta
    credit_take_profit_pct: Decimal = Field(default=Decimal("0.50"), gt=0, le=1)  # of the credit captured
    credit_stop_multiple: Decimal = Field(default=Decimal(2), gt=0)  # loss of this many credits: close


class ExecutionConfig(Frozen):
    slice_threshold: Decimal = Field(gt=0)
    max_child_contracts: int = Field(gt=0)
    child_interval_s: Decimal = Field(ge=0)
    reprice_s: Decimal = Field(gt=0)
    reprice_step_pct_of_spread: Pct = Field(gt=0, le=1)
    max_slippage_pct: Pct = Field(ge=0, lt=1)
    parent_timeout_s: Decimal = Field(gt=0)
    max_messages_per_s: int = Field(gt=0, le=50)
    order_ref_prefix: str = "tradingd"


class OptionModelConfig(Frozen):
    """How the sim prices an option it has no recorded quote for (`broker/pricing.py`).

    Model knobs, not SPEC rules: they only make modelled quotes look like the market's.
    """

    risk_free_rate: Decimal = Field(default=Decimal("0.04"), ge=0, lt=1)
    # ATM implied vol = VIX / 100 × multiple: always for `vix_only`, else when no daily bars are known.
    vix_multiple: dict[str, Decimal] = {}
    default_vix_multiple: Decimal = Field(default=Decimal(1), gt=0)
    vix_only: tuple[str, ...] = ()  # index ETFs: their vol is the index's, VIX says it directly
    # Single stocks with daily bars: ATM IV = realized vol over `realized_window` sessions × this.
    iv_over_realized: Decimal = Field(default=Decimal("1.1"), gt=0)
    realized_window: int = Field(default=20, gt=1)
    skew: Decimal = Field(default=Decimal(2), ge=0)  # IV × (1 − skew × ln(K/S)): lower strikes richer
    min_iv: Decimal = Field(default=Decimal("0.05"), gt=0)
    max_iv: Decimal = Field(default=Decimal(3), gt=0)
    spread_pct: Pct = Field(default=Decimal("0.03"), gt=0, lt=1)  # of the theoretical price at the money
    spread_widening: Decimal = Field(default=Decimal("0.5"), ge=0)  # × (1 + this × z)
    # z = |ln(K/S)| / (IV × √horizon): moneyness over a fixed horizon, so liquidity does not vanish
    # from a 0DTE chain as the close nears (open interest is built over the contract's life).
    moneyness_horizon_days: int = Field(default=30, gt=0)
    display_size: int = Field(default=50, gt=0)  # contracts shown at each touch at the money
    open_interest: int = Field(default=5000, ge=0)  # at the money; falls as exp(−z²/2) away from it
    min_time_to_expiry_s: int = Field(default=60, gt=0)  # priced at the bell without dividing by zero
    # --- room replay (issue 10): same-day (0DTE) vol, calibrated on recorded SPXW quotes (docs/validation.md).
    # VIX1D (`vix1d_symbol`) is the same-day vol gauge: used directly where the data has it. Else the
    # VIX-based vol × `same_day_vix_ratio` (fitted: median ATM IV / VIX open, time in calendar minutes).
    same_day_vix_ratio: Decimal = Field(default=Decimal(1), gt=0)
    vix1d_symbol: str | None = "VIX1D"

    @model_validator(mode="after")
    def _consistent(self) -> OptionModelConfig:
        if self.min_iv > self.max_iv:
            raise ValueError("broker.sim.model.min_iv must not exceed max_iv")
        return self


class SimBrokerConfig(Frozen):
    latency_ms: int = Field(default=50, ge=0)
    commission_per_contract: Decimal = Decimal("0.65")
    commission_min_per_order: Decimal = Decimal("1.00")
    starting_cash: Decimal | None = None  # None: the capital base
    model: OptionModelConfig = OptionModelConfig()


class IBConfig(Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=4002, gt=0, lt=65536)
    client_id: int = Field(default=17, ge=0)
    account: str | None = None
    live: bool = False
    connect_timeout_s: Decimal = Decimal(10)
    heartbeat_interval_s: Decimal = Decimal(10)
    heartbeat_timeout_s: Decimal = Decimal(5)
    reconnect_initial_s: Decimal = Decimal(1)
    reconnect_max_s: Decimal = Decimal(60)
    disconnect_alert_after_s: Decimal = Decimal(60)
    market_data_lines: int = Field(default=100, gt=0)
    # IB's nightly restart window and the weekend, exchange time: a disconnect inside is expected.
    restart_window_start: time = time(23, 45)
    restart_window_end: time = time(0, 45)
    # error 326 (client id in use): how many consecutive client ids one connect tries.
    client_id_attempts: int = Field(default=5, gt=0)
    # each reconnect wait is the backoff delay minus up to this fraction of it, at random.
    reconnect_jitter: Decimal = Field(default=Decimal("0.5"), ge=0, lt=1)
    # a fill waits this long for its commission report before it is passed on without one.
    commission_wait_s: Decimal = Field(default=Decimal(2), ge=0)
    # IB answers a snapshot within 11 s (its documented worst case for options).
    snapshot_timeout_s: Decimal = Field(default=Decimal(11), gt=0)
    # contracts are USD-listed; `broker check` warns when the account's base currency differs.
    currency: str = Field(default="USD", min_length=3, max_length=3)

    # --- room ib (issue 9): IB as a real gateway behaves ---------------------------------------
    # the zone the gateway writes times in when it names none (IB's `TimezoneTWS`).
    gateway_timezone: str = "America/New_York"
    # paper accounts only: use IB's delayed data where no live subscription exists (labelled delayed).
    delayed_data_on_paper: bool = False
    # order ids are the account's: profiles on one host take turns through a lock file here
    # (empty: the system's temp directory); a turn is given back after this long whatever happens.
    order_id_lock_dir: str | None = None
    order_id_turn_max_s: Decimal = Field(default=Decimal(5), gt=0)
    # error 326: our own client id is tried this many more times (reconnect backoff) before moving on.
    client_id_retries: int = Field(default=3, ge=0)
    # a reconciliation step IB did not answer (no end marker) is retried this many times, with backoff.
    reconcile_retries: int = Field(default=3, ge=0)
    # historical-data requests (daily closes for correlations) are spaced this far apart (IB paces them).
    history_pace_s: Decimal = Field(default=Decimal(2), ge=0)
    # expiries up to this many days out get their own strikes (real chains are uneven; one request each).
    chain_expiry_days: int = Field(default=10, ge=0)
    # a protective stop's change (shrink, cancel) waits this long for IB to take or refuse it.
    change_confirm_timeout_s: Decimal = Field(default=Decimal(5), gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> IBConfig:
        if self.live and not self.account:
            raise ValueError("ib.live = true needs ib.account, the live account id it may trade")
        if self.heartbeat_timeout_s >= self.heartbeat_interval_s:
            raise ValueError("ib.heartbeat_timeout_s must be shorter than ib.heartbeat_interval_s")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError("ib.reconnect_initial_s must not exceed ib.reconnect_max_s")
        return self


class ProtectiveConfig(Frozen):
    """Each position's hard stop resting at the broker as a STP order (SPEC §6.1)."""

    enabled: bool = True
    tif: Literal["DAY", "GTC"] = "GTC"
    price_tick: Decimal = Field(default=Decimal("0.01"), gt=0)  # stop prices round down to this


class BrokerConfig(Frozen):
    kind: Literal["sim", "ib"] = "sim"
    sim: SimBrokerConfig = SimBrokerConfig()
    ib: IBConfig = IBConfig()
    protective: ProtectiveConfig = ProtectiveConfig()


# --------------------------------------------------------------------------- market regime (SPEC §10)
# Room `regime`'s keys, kept in one section ([regime.*] in the profiles) so other sections stay untouched.


class EventsConfig(Frozen):
    """The event calendar's effects (SPEC §10.1). Release times are exchange time (America/New_York)."""

    enabled: bool = True
    calendar_file: str | None = None  # None: the bundled config/calendar/events.toml
    refresh_source: str | None = None  # an operator's file path or http(s) URL in the same format; None: none
    refresh_timeout_s: Decimal = Field(default=Decimal(10), gt=0)
    macro_kinds: tuple[str, ...] = ("fomc", "cpi", "nfp")  # the kinds that make a macro day
    macro_day_multiplier_cap: Decimal | None = Field(default=None, gt=0)  # None: no macro-day cap
    macro_day_target_scale: Decimal = Field(default=Decimal(1), gt=0)  # 0dte take-profit targets on a macro day
    blackout_before_min: int = Field(default=10, ge=0)
    blackout_after_min: int = Field(default=10, ge=0)
    earnings_span_cap: Decimal | None = Field(default=None, gt=0)  # 1.0 = the minimum bet; None: no cap
    # a fundamental score (SPEC §2.2's) at or above this lifts the earnings cap; None: never lifted
    earnings_cap_lifted_at_score: Decimal | None = Field(default=None, ge=0, le=1)


RegimeName = Literal["calm", "normal", "stressed"]


class VolatilityRegimeConfig(Frozen):
    """Calm / normal / stressed (SPEC §10.2). Percentiles are fractions (0.9 = 90th)."""

    enabled: bool = True
    history_sessions: int = Field(default=252, gt=1)  # VIX and skew percentiles over this many sessions
    min_history: int = Field(default=20, gt=1)  # fewer points: the percentile is unknown, not used
    stressed_vix_above: Decimal | None = Field(default=Decimal(30), gt=0)
    stressed_vix_percentile_above: Decimal | None = Field(default=Decimal("0.90"), ge=0, le=1)
    stressed_on_inversion: bool = True
    # front/next slope = next expiry's ATM IV − front expiry's; below this it is inverted (vol points as fractions)
    inversion_below: Decimal = Decimal(0)
    stressed_skew_percentile_above: Decimal | None = Field(default=Decimal("0.90"), ge=0, le=1)
    calm_vix_below: Decimal | None = Field(default=Decimal(15), gt=0)
    calm_vix_percentile_below: Decimal | None = Field(default=Decimal("0.30"), ge=0, le=1)
    caps: dict[RegimeName, Decimal] = {"calm": Decimal(2), "normal": Decimal(2), "stressed": Decimal(1)}

    @model_validator(mode="after")
    def _consistent(self) -> VolatilityRegimeConfig:
        if self.min_history > self.history_sessions:
            raise ValueError("regime.volatility.min_history must not exceed history_sessions")
        if any(v <= 0 for v in self.caps.values()):
            raise ValueError("regime.volatility.caps must be positive")
        return self


class SectorConfig(Frozen):
    """Each underlying's sector and each sector's exposure cap as a fraction of the base (SPEC §10.3)."""

    map: dict[str, str] = {}  # underlying -> sector
    max_exposure_pct: dict[str, Pct] = {}  # sector -> cap; a sector not listed takes the default
    default_max_exposure_pct: Pct | None = Field(default=None, gt=0, le=1)  # None: uncapped

    @model_validator(mode="after")
    def _consistent(self) -> SectorConfig:
        bad = {k: v for k, v in self.max_exposure_pct.items() if not 0 < v <= 1}
        if bad:
            raise ValueError(f"regime.sectors.max_exposure_pct must be within (0, 1]: {bad}")
        return self


class GreekLimitsConfig(Frozen):
    """Portfolio vega ($ per vol point) and theta ($ per calendar day) limits joining `greeks_limit`
    (SPEC §10.4): Σ greek × multiplier × contracts after the trade, absolute. None disables."""

    max_abs_vega: Decimal | None = Field(default=None, gt=0)
    max_abs_theta: Decimal | None = Field(default=None, gt=0)


class RegimeConfig(Frozen):
    events: EventsConfig = EventsConfig()
    volatility: VolatilityRegimeConfig = VolatilityRegimeConfig()
    sectors: SectorConfig = SectorConfig()
    greeks: GreekLimitsConfig = GreekLimitsConfig()


# --------------------------------------------------------------------------- daemon


class ApiLimitsConfig(Frozen):
    """Part 8 (input hardening): what one client may ask of the API before it is refused."""

    # Per-token buckets: a token may send `per_s` requests a second on average, `burst` at once;
    # over it the answer is 429 with Retry-After. The operator routes (halt/resume/flatten/
    # acknowledge) have their own, smaller bucket per token. /healthz and /metrics are not limited.
    signals_per_s: Decimal = Field(default=Decimal(20), gt=0)
    signals_burst: int = Field(default=40, gt=0)
    operator_per_s: Decimal = Field(default=Decimal(1), gt=0)
    operator_burst: int = Field(default=10, gt=0)
    # A client must send its whole request head within this, and its body within that, or it is
    # disconnected (head) / answered 408 (body): slow clients cannot hold connections open.
    header_timeout_s: Decimal = Field(default=Decimal(5), gt=0)
    body_timeout_s: Decimal = Field(default=Decimal(5), gt=0)
    # JSON bodies nested deeper than this are refused (400 json_too_deep) before they are parsed.
    max_json_depth: int = Field(default=16, gt=1, le=200)


class ApiConfig(Frozen):
    host: Literal["127.0.0.1", "localhost", "::1"] = "127.0.0.1"
    port: int = Field(default=8740, ge=0, lt=65536)  # 0: any free port
    token_file: str | None = None
    admin_token_file: str | None = None
    # A request body larger than this is refused (400 body_too_large) before it is parsed.
    max_body_bytes: int = Field(default=65536, gt=0)
    limits: ApiLimitsConfig = ApiLimitsConfig()  # Part 8


class ScheduleConfig(Frozen):
    checkpoint_minutes: int = Field(default=5, gt=0, le=60)
    # The systemd watchdog stops vouching for a daemon whose checkpoint is this many intervals late
    # during regular hours (a stuck scheduler or engine gets restarted).
    checkpoint_overdue_after: int = Field(default=3, gt=0)
    correlation_refresh: time = time(9, 0)
    daily_report: time = time(16, 15)
    # room ib (issue 9): option chains (strikes per expiry) are loaded again before each session's open.
    chain_refresh: time = time(8, 45)
    # room expiry (SPEC §6.3): this long after each session's close, every position whose contract
    # expired is settled (worthless or at intrinsic value); the broker has the expiry's last print by then.
    expiry_settlement_after_close_min: int = Field(default=5, ge=0, le=240)


class StoreConfig(Frozen):
    url: str | None = None  # None: sqlite:///<state dir>/tradingd-<profile>.db
    busy_timeout_ms: int = Field(default=5000, gt=0)  # SQLite: how long a write waits for a lock
    # Part 8: refused signals (and their decisions) older than this are pruned by a daily job, so a
    # flood of bad signals cannot grow the database without bound. Accepted ones are kept forever.
    refused_retention_days: int = Field(default=30, gt=0)
    prune_at: time = time(3, 30)  # exchange time, daily


# --- room journal (Part 5, SPEC §6.2): the write-behind journal in front of the store ---------------
class JournalConfig(Frozen):
    # After a failed write the journal retries, waiting retry_initial_s, doubling up to retry_max_s.
    retry_initial_s: float = Field(default=0.05, gt=0)
    retry_max_s: float = Field(default=2.0, gt=0)
    # Records written in one transaction when catching up (one commit per batch, not per record).
    batch_size: int = Field(default=200, gt=0)
    # Pending records above this are counted and alerted (tradingd_journal_pending); never dropped.
    high_water: int = Field(default=50_000, gt=0)
    # How long an entry's intent may wait to be committed before the entry is refused store_unavailable.
    durable_timeout_s: float = Field(default=5.0, gt=0)
    # Exit-event and decision ids are reserved from the store this many at a time (database-wide, so
    # daemons sharing a database never give the same id); the next block is reserved when half is used.
    id_block: int = Field(default=1000, gt=0)
# --- end room journal ---------------------------------------------------------------------------------


class DaemonConfig(Frozen):
    api: ApiConfig = ApiConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    store: StoreConfig = StoreConfig()
    state_dir: str = "var"
    journal: JournalConfig = JournalConfig()  # room journal


# --------------------------------------------------------------------------- notifications (room ops)

NOTIFICATION_EVENTS = ("breaker", "halt", "resume", "flatten", "emergency_flatten", "disconnect", "store_fault",
                       "fill", "daily_report", "vol_term_inversion")


class NotificationsConfig(Frozen):
    """Telling the operator (SPEC §11) through apprise URLs (ntfy://, tgram://, slack://, mailto://,
    json://host/ for a webhook...). Empty `urls` and no `urls_file`: notifications are off."""

    urls: tuple[str, ...] = ()
    # A file with one apprise URL a line: the URLs carry tokens, keep them out of the profile.
    urls_file: str | None = None
    # The event kinds sent; "fill" is left out by default (one message per execution is a lot).
    events: tuple[Literal["breaker", "halt", "resume", "flatten", "emergency_flatten", "disconnect",
                          "store_fault", "fill", "daily_report", "vol_term_inversion"], ...] = (
        "breaker", "halt", "resume", "flatten", "emergency_flatten", "disconnect", "store_fault", "daily_report",
        "vol_term_inversion")
    queue_size: int = Field(default=200, gt=0)  # messages waiting to be sent; beyond it they are dropped, counted
    retries: int = Field(default=3, ge=0)  # a failed send is tried again this many times
    backoff_s: Decimal = Field(default=Decimal(2), gt=0)  # before retry n: backoff_s × 2^(n-1)
    # Per event kind: at most `burst` messages, refilled at one per `per_kind_interval_s` (a flapping gateway
    # sends a few, then one per interval with the count of what was held back).
    burst: int = Field(default=3, gt=0)
    per_kind_interval_s: Decimal = Field(default=Decimal(300), gt=0)
    timeout_s: Decimal = Field(default=Decimal(10), gt=0)  # one send's network timeout


class MarketDataConfig(Frozen):
    """SPEC §4.4 market-data sanity (market/sanity.py)."""

    max_tick_jump_underlying: Pct = Field(default=Decimal("0.20"), gt=0)
    max_tick_jump_option: Pct = Field(default=Decimal("0.60"), gt=0)
    jump_window_s: Decimal = Field(default=Decimal(5), gt=0)  # a second agreeing quote within it confirms a jump
    # A last usable mid older than this is no reference for the jump check (see docs/decisions/input.md).
    jump_reference_max_age_s: Decimal = Field(default=Decimal(120), gt=0)
    max_future_s: Decimal = Field(default=Decimal(2), ge=0)  # clock skew allowed on a quote's stamp
    max_age_s: Decimal = Field(default=Decimal(30), gt=0)  # older on arrival: unusable
    log_interval_s: Decimal = Field(default=Decimal(60), gt=0)  # one log line per key and reason per interval


class Settings(Frozen):
    """One profile's whole effective configuration."""

    @model_validator(mode="before")
    @classmethod
    def _closeout_lead(cls, raw: Any) -> Any:
        """`exits.zero_dte.closeout_lead_s` not given: two parent timeouts, so the close-out's slicer
        finishes by `closeout_time` even when its last child waits out one timeout and is re-priced to
        the far touch (found on sparse 5-minute data: one lead of 60 s ended 2 s late). One number for
        the job, the core's timer and the exit rule."""
        if not isinstance(raw, dict):
            return raw
        exits, execution = raw.get("exits"), raw.get("execution")
        zero = exits.get("zero_dte") if isinstance(exits, dict) else None
        timeout = execution.get("parent_timeout_s") if isinstance(execution, dict) else None
        if isinstance(zero, dict) and "closeout_lead_s" not in zero and timeout is not None:
            return {**raw, "exits": {**exits, "zero_dte": {**zero, "closeout_lead_s": 2 * Decimal(str(timeout))}}}
        return raw

    profile: ProfileInfo
    capital: CapitalConfig
    sizing: SizingConfig
    gate: GateConfig
    multiplier: MultiplierConfig
    correlation: CorrelationConfig = CorrelationConfig()
    scale_in: ScaleInConfig = ScaleInConfig()
    breakers: BreakersConfig
    position_levels: PositionLevelsConfig
    exits: ExitsConfig
    liquidity: LiquidityConfig
    execution: ExecutionConfig
    broker: BrokerConfig = BrokerConfig()
    daemon: DaemonConfig = DaemonConfig()
    regime: RegimeConfig = RegimeConfig()  # SPEC §10 (room regime)
    notifications: NotificationsConfig = NotificationsConfig()  # room ops
    market_data: MarketDataConfig = MarketDataConfig()  # Part 8: SPEC §4.4 sanity
    multileg: MultilegConfig = MultilegConfig()  # SPEC §9 (room multileg)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        name = self.profile.name
        if name == "0dte" and self.exits.zero_dte is None:
            raise ValueError("exits.zero_dte is required for the 0dte profile")
        if name == "7dte" and self.exits.seven_dte is None:
            raise ValueError("exits.seven_dte is required for the 7dte profile")
        unknown = set(self.multiplier.liquidity_caps) - set(self.profile.underlyings)
        if unknown:
            raise ValueError(f"multiplier.liquidity_caps names underlyings not in the profile: {sorted(unknown)}")
        return self


def _descending(key: str, rows: tuple[Threshold, ...]) -> None:
    ats = [r.at for r in rows]
    if ats != sorted(ats, reverse=True) or len(set(ats)) != len(ats):
        raise ValueError(f"{key}: `at` must strictly fall (highest first)")
