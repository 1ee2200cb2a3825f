"""The noise and slow drift a real sensor shows around the true value, for the fake chips.

A fake chip that returns exactly the value it was set to is a stuck chip to the
agent's stuck-value detector (:mod:`roomwatch.hardware.faults`): no real
sensor reads 600 ppm for four hours. The simulator and the demo therefore feed
their fake chips the value the scenario sets plus a little of what a real part
shows (the chip's own driver then quantises it to the real resolution):

* jitter from sample to sample (measurement noise), and
* a slow drift (air moving past the sensor, self-heating, the HVAC cycling),
  an Ornstein-Uhlenbeck process with a correlation time of minutes,

their sum never further from the set value than ``bound``, so a scenario's
thresholds hold (a room set to 30 °C never reads 27 °C). Seeded by text (the
room and sensor), so every run gives the same readings: ``random.Random``
seeds a string through SHA-512, whatever PYTHONHASHSEED says.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WanderSpec:
    """How far a reading strays: each amount absolute, or a fraction of the value."""

    noise: float  # standard deviation of the sample-to-sample jitter
    drift: float  # standard deviation of the slow drift
    drift_tau_s: float  # the drift's correlation time
    bound: float  # never further than this from the set value
    relative: bool = False  # the amounts are fractions of the value (light: 1 % of the level)
    floor: float = 0.0  # relative only: the least jitter (sd) and bound, as a real part's counts
    low: float = -math.inf  # the chip's range: a reading never leaves it
    high: float = math.inf


#: BME280 (0.01 °C resolution) or DS18B20 (0.0625 °C steps): a still room's air, ±0.05 °C.
TEMPERATURE = WanderSpec(noise=0.01, drift=0.02, drift_tau_s=600, bound=0.05, low=-40, high=85)
#: BH1750 (1 count = 0.83 lx): mains-lit rooms flicker by a fraction of a percent; ±1 %, at
#: least a count or so in a dim room. A dark room (0 lx) stays at 0, and a room brighter than
#: the chip's range stays saturated (the chip clips), as a real one reads them: both ends
#: are exempt from the stuck check.
LIGHT = WanderSpec(noise=0.003, drift=0.004, drift_tau_s=300, bound=0.01, relative=True, floor=0.5)
#: SCD40/41 (1 ppm resolution, repeatability ±10 ppm): ±5 ppm around the set level.
CO2 = WanderSpec(noise=2.0, drift=2.0, drift_tau_s=900, bound=5.0, low=1, high=40000)


class Wander:
    """One sensor's stray from the set value, sample by sample, seeded."""

    def __init__(self, spec: WanderSpec, seed: str) -> None:
        self.spec = spec
        self._rng = random.Random(seed)  # noqa: S311 - noise for a fake, not a secret
        self._drift = self._rng.gauss(0.0, 1.0)  # in units of the drift's sd
        self._at: float | None = None

    def around(self, value: float, at: float) -> float:
        """A reading of ``value`` taken at ``at`` seconds (any monotonic time base)."""
        spec = self.spec
        if self._at is not None and at > self._at:
            keep = math.exp(-(at - self._at) / spec.drift_tau_s)
            self._drift = keep * self._drift + math.sqrt(1 - keep * keep) * self._rng.gauss(0, 1)
        if self._at is None or at > self._at:
            self._at = at
        jitter = self._rng.gauss(0.0, 1.0)
        if spec.relative and value == 0:
            return value  # a dark room reads 0, noise or not
        scale = abs(value) if spec.relative else 1.0
        noise = max(spec.noise * scale, spec.floor)
        bound = max(spec.bound * scale, spec.floor * 2)
        stray = spec.drift * scale * self._drift + noise * jitter
        stray = min(bound, max(-bound, stray))
        return min(spec.high, max(spec.low, value + stray))
