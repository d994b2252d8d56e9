"""The fair day's clock: local opening hours, the scan-intensity curve, UTC timestamps.

Times inside the simulator are integer milliseconds since the Unix epoch (UTC), so that the
ISO string sent on the wire and the minute the ground truth counts it in always agree.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as dtime
from itertools import accumulate
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from producers.simulator.params import Peak, SimulationParams

_MINUTE_PREFIX: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """Epoch milliseconds -> '2026-03-26T02:15:07.123Z' (tz-aware UTC ISO 8601)."""
    s, frac = divmod(ms, 1000)
    minute, sec = divmod(s, 60)
    prefix = _MINUTE_PREFIX.get(minute)
    if prefix is None:
        if len(_MINUTE_PREFIX) > 100_000:
            _MINUTE_PREFIX.clear()
        prefix = _MINUTE_PREFIX[minute] = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(s))
    return f"{prefix}{sec:02d}.{frac:03d}Z"


def iso_datetime(moment: datetime) -> str:
    """A tz-aware datetime as the same UTC ISO form; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: pass a timezone-aware one")
    return iso_ms(round(moment.timestamp() * 1000))


def minute_key(ms: int) -> str:
    """The UTC minute an event-time falls in: 'YYYY-MM-DDTHH:MM'."""
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ms // 60_000 * 60))


def _bumps(hour: float, peaks: tuple[Peak, ...]) -> float:
    return sum(h * math.exp(-0.5 * ((hour - c) / sd) ** 2) for c, sd, h in peaks)


def _fade(hour: float, p: SimulationParams) -> float:
    fade_start, fade_floor = p.fade
    if hour <= fade_start:
        return 1.0
    return 1 - (1 - fade_floor) * (hour - fade_start) / (p.close_hour - fade_start)


def scan_intensity(hour: float, p: SimulationParams) -> float:
    """Relative scan rate at a local hour: opening and after-lunch peaks, lunch dip, fade."""
    w = p.scan_base + _bumps(hour, p.scan_peaks)
    lunch_start, lunch_end, lunch_factor = p.lunch
    if lunch_start <= hour < lunch_end:
        w *= lunch_factor
    return w * _fade(hour, p)


def arrival_intensity(hour: float, p: SimulationParams) -> float:
    """Relative rate of buyers entering the halls: at opening, after lunch, few late."""
    return (p.arrival_base + _bumps(hour, p.arrival_peaks)) * _fade(hour, p) ** 2


class FairClock:
    """Minute-resolution sampling of event times within the fair's opening hours."""

    def __init__(self, day: date, p: SimulationParams) -> None:
        try:
            tz: timezone | ZoneInfo = ZoneInfo(p.timezone)
        except ZoneInfoNotFoundError:  # Asia/Shanghai has been UTC+8 without DST since 1991
            tz = timezone(timedelta(hours=8))
        self.midnight_ms = round(datetime.combine(day, dtime(0), tz).timestamp() * 1000)
        self.open_ms = self.at(p.open_hour)
        self.close_ms = self.at(p.close_hour)
        self.minutes = max(1, round((p.close_hour - p.open_hour) * 60))
        hours = [p.open_hour + (i + 0.5) / 60 for i in range(self.minutes)]
        self._scan_cum = list(accumulate(scan_intensity(h, p) for h in hours))
        self._arrival_cum = list(accumulate(arrival_intensity(h, p) for h in hours))
        self.tz = tz

    def at(self, hour: float) -> int:
        """Epoch ms of a local hour of the fair day (9.5 -> 09:30 local)."""
        return self.midnight_ms + round(hour * 3_600_000)

    def arrival_minute(self, rng: random.Random) -> int:
        cum = self._arrival_cum
        return min(bisect_right(cum, rng.random() * cum[-1]), self.minutes - 1)

    def scan_ms(self, rng: random.Random, lo: int, hi: int) -> int:
        """A scan time within minutes [lo, hi) after opening, following the intensity curve."""
        cum = self._scan_cum
        base = cum[lo - 1] if lo > 0 else 0.0
        u = base + rng.random() * (cum[hi - 1] - base)
        minute = min(max(bisect_right(cum, u), lo), hi - 1)
        return self.open_ms + minute * 60_000 + int(rng.random() * 60_000)

    def uniform_ms(self, rng: random.Random, start_ms: int, end_ms: int) -> int:
        return start_ms + int(rng.random() * max(0, end_ms - start_ms))

    def local_hour(self, ms: int) -> float:
        local = datetime.fromtimestamp(ms / 1000, UTC).astimezone(self.tz)
        return local.hour + local.minute / 60 + local.second / 3600
