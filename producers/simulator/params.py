"""Every scale and behaviour assumption of the simulated fair, as one frozen dataclass.

Defaults follow /work/shared/DOMAIN.md ("Scale assumptions for the simulator"). The size of a
run is set by ``simulate_fair(events=...)``: the number of buyers follows from it, while the
per-buyer behaviour (booths visited, conversion, resends...) stays at full-scale rates.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.registry import MAX_EVENT_BYTES

Peak = tuple[float, float, float]  # (local hour of the centre, spread in hours, height)


@dataclass(frozen=True)
class SimulationParams:
    """Knobs of the simulated fair day; all rates are probabilities unless named otherwise."""

    # -- calendar (local time of the fair) ---------------------------------------------------
    timezone: str = "Asia/Shanghai"
    open_hour: float = 9.5
    close_hour: float = 18.0
    registration_desk_hour: float = 9.0  # kiosks open before the halls
    profile_hours: tuple[float, float] = (7.5, 9.5)  # exhibitors update profiles before opening
    scan_peaks: tuple[Peak, ...] = ((10.0, 0.6, 1.5), (14.1, 0.55, 0.6))
    scan_base: float = 0.3
    lunch: tuple[float, float, float] = (12.0, 13.25, 0.4)  # start, end, intensity factor
    fade: tuple[float, float] = (16.5, 0.35)  # from this hour intensity falls to this factor
    arrival_peaks: tuple[Peak, ...] = ((9.7, 0.3, 1.0), (13.4, 0.35, 0.3))
    arrival_base: float = 0.04
    visit_hours: tuple[float, float] = (2.5, 8.5)
    min_visit_minutes: int = 90

    # -- scale of the real fair (informational: a run's size is set by ``events``) ----------
    fair_days: int = 5
    exhibitors: tuple[int, int] = (800, 1500)
    delegations: tuple[int, int] = (15, 25)
    visitors: tuple[int, int] = (30_000, 80_000)
    peak_day_visitors: int = 20_000
    peak_scans_per_s: tuple[float, float] = (50.0, 100.0)

    # -- buyers ---------------------------------------------------------------------------
    countries: tuple[tuple[str, float], ...] = (
        ("CN", 0.79), ("HK", 0.04), ("KR", 0.03), ("JP", 0.03), ("US", 0.03), ("IT", 0.025),
        ("DE", 0.02), ("FR", 0.02), ("GB", 0.015),
    )
    common_name_rate: float = 0.04  # Chinese buyers drawing a very common name (王伟...)
    namesake_rate: float = 0.01  # new buyer deliberately sharing an earlier buyer's name
    colleague_rate: float = 0.04  # new buyer from an earlier buyer's company
    registration_consent: float = 0.96
    badge_reissue_rate: float = 0.01  # lost badge: re-registers with a new badge id
    online_only_rate: float = 0.03  # buyers who never come but send an inquiry

    # -- walking the halls -----------------------------------------------------------------
    booths_per_buyer: tuple[int, int] = (10, 25)
    scan_given_visit: float = 0.9  # "scanned at most of them"
    revisit_rate: float = 0.08  # a scan at a booth the buyer has been scanned at already
    favourite_clusters: tuple[int, int] = (2, 4)
    favourite_share: float = 0.8  # share of scans at the favourite clusters
    scanners_per_booth: tuple[int, int] = (1, 3)
    wedge_share: float = 0.25  # scanners that only type the badge code (no booth context)
    manual_rate: float = 0.03
    ratings: tuple[tuple[str | None, float], ...] = (
        ("hot", 0.15), ("warm", 0.35), ("cold", 0.2), (None, 0.3),
    )
    note_rate: float = 0.12
    # Share of scans sent as booth_scan version 2 (0: every scan is version 1, the day is the
    # same as before the option): scanner_id for the scanner (30% keep the old name
    # scanner_device), 60% with dwell_seconds (a log-normal around 90 s, at most a day).
    scan_v2_share: float = 0.0
    receive_delay_s: tuple[float, float] = (0.05, 3.0)
    duplicate_rate: float = 0.02  # scanner resends the same bytes
    duplicate_delay_s: tuple[float, float] = (1.0, 12.0)
    late_rate: float = 0.01  # scans held by an offline scanner
    late_delay_h: tuple[float, float] = (1.0, 5.0)

    # -- online inquiries -----------------------------------------------------------------
    inquiry_rate: float = 0.10  # of registered buyers (DOMAIN: 5-15%)
    inquiry_wechat_channel: float = 0.45
    inquiry_wechat_only: float = 0.07  # contact given as a WeChat id only
    inquiry_consent: float = 0.9
    inquiry_targets: tuple[float, float, float] = (0.4, 0.3, 0.3)  # cluster, exhibitor, both

    # -- buyer records: typing and reading errors per channel (producers/simulator/channels.py)
    # Off: every record's contact fields are as before the option (the day's events are the
    # same either way, drawn from a generator of their own, except the contact text).
    realistic_variants: bool = True

    # -- procurement funnel: share of engaged buyer-exhibitor pairs reaching each step -----
    funnel: tuple[float, float, float, float] = (0.10, 0.06, 0.04, 0.01)
    # Above the seed's "over 40% reaching intent": inquiries late in the day cannot climb every
    # step before closing, so about 0.92 of these rates are reached (measured on 100k runs).
    matchmaking_funnel: tuple[float, float, float, float] = (0.8, 0.65, 0.5, 0.14)
    rating_lift: tuple[tuple[str | None, float], ...] = (
        ("hot", 2.5), ("warm", 1.0), ("cold", 0.3), (None, 0.8),
    )

    # -- a surge (simulate_fair(surge=...)): extra buyers at one cluster within minutes -------
    surge_share: float = 0.04  # of the run's events
    surge_min_events: int = 150
    surge_minutes: int = 15
    surge_scans: tuple[int, int] = (3, 8)  # booths of the cluster each scanned at
    surge_inquiry_rate: float = 0.3

    # -- bad input ----------------------------------------------------------------------
    malformed_rate: float = 0.005  # of all messages
    malformed_weights: tuple[tuple[str, float], ...] = (
        ("bad_json", 0.22), ("not_an_object", 0.06), ("oversized", 0.05),
        ("missing_field", 0.13), ("invalid_field", 0.2), ("wrong_topic", 0.09),
        ("unknown_cluster", 0.07), ("unknown_booth", 0.11), ("unknown_exhibitor", 0.07),
    )
    oversized_bytes: tuple[int, int] = (80_000, 200_000)
    # The stream's limit (Settings.max_message_bytes, same default): oversized means above
    # it. The commands pass the configured value in.
    max_message_bytes: int = MAX_EVENT_BYTES

    # -- composition ----------------------------------------------------------------------
    events_per_profile: int = 5  # profiles = min(exhibitors in roster, events // this)

    def full_scale_events(self, visitors: int | None = None) -> int:
        """Roughly how many valid events a real fair day of ``visitors`` buyers produces
        (default: the peak day), for choosing ``simulate_fair(events=...)``."""
        lo, hi = self.booths_per_buyer
        scans = (lo + hi) / 2 * self.scan_given_visit
        steps = scans * (1 - self.revisit_rate) * sum(self.funnel)
        per_buyer = 1 + scans + self.inquiry_rate + steps
        return round((visitors or self.peak_day_visitors) * per_buyer) + self.exhibitors[1]
