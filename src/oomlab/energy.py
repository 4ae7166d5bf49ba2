"""Joules per generation: measured from a hardware counter where one is readable, else estimated and labelled.

Counters tried, in order: NVIDIA NVML total energy (mJ since driver load; Volta and newer),
then Intel/AMD RAPL package counters under /sys/class/powercap (µJ, cumulative, wrapping at
max_energy_range_uj). Where neither can be read, energy = power × seconds with power = 50% of
the device's TDP, CodeCarbon's "constant mode" fallback (mlco2/codecarbon issue #524) — an
estimate, and every table and plot says so.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

# An assumption, not a fact about this machine: a common desktop CPU TDP class. Set --tdp-watts for yours.
DEFAULT_TDP_WATTS = 65.0
# CodeCarbon's constant mode charges 50% of TDP when no counter is available (mlco2/codecarbon #524).
TDP_FRACTION = 0.5


@dataclass
class EnergyReading:
    joules: float = 0.0
    measured: bool = False
    method: str = ""


class EnergySpan:
    """Joules for the samples of one request, each charged as it is committed (before its siblings end).

    Measured: the counter's average power since the span began × the sample's seconds, so the shares
    of a batch add up to what the counter saw. Estimated: 50% of TDP × the sample's seconds.
    """

    def __init__(self, meter: EnergyMeter):
        self.meter = meter
        self.t0 = time.perf_counter()
        self.e0 = meter._read() if meter.measured else 0.0

    def joules(self, seconds: float) -> float:
        m = self.meter
        if not m.measured:
            return TDP_FRACTION * m.tdp_watts * seconds
        elapsed = time.perf_counter() - self.t0
        delta = m._read() - self.e0
        if delta < 0:  # RAPL wrapped
            delta += sum(_max_range_uj(d) for d in m._rapl) / 1e6
        return delta / elapsed * seconds if elapsed > 0 else 0.0


class EnergyMeter:
    """Context manager source of joules for a window of work."""

    def __init__(self, tdp_watts: float = DEFAULT_TDP_WATTS, counter: str = "auto"):
        self.tdp_watts = tdp_watts
        # "auto" reads RAPL only: an NVML counter measures a GPU, which a CPU backend does not use.
        self._rapl = _rapl_domains() if counter in ("auto", "rapl") else []
        self._nvml = _nvml_handles() if counter == "nvml" else []

    @property
    def measured(self) -> bool:
        return bool(self._nvml or self._rapl)

    @property
    def method(self) -> str:
        if self._nvml:
            return "measured (NVML)"
        if self._rapl:
            return "measured (RAPL)"
        return f"estimated ({TDP_FRACTION:.0%} of {self.tdp_watts:g} W TDP)"

    def span(self) -> EnergySpan:
        return EnergySpan(self)

    def _read(self) -> float:
        if self._nvml:
            import pynvml  # type: ignore[import-not-found]

            return sum(pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._nvml) / 1e3
        return sum(_read_uj(d) for d in self._rapl) / 1e6

    @contextmanager
    def window(self) -> Iterator[EnergyReading]:
        """Measure the enclosed work; the reading is filled in on exit."""
        reading = EnergyReading(measured=self.measured, method=self.method)
        t0 = time.perf_counter()
        e0 = self._read() if self.measured else 0.0
        try:
            yield reading
        finally:
            seconds = time.perf_counter() - t0
            if self.measured:
                delta = self._read() - e0
                if delta < 0:  # RAPL wrapped
                    delta += sum(_max_range_uj(d) for d in self._rapl) / 1e6
                reading.joules = delta
            else:
                reading.joules = TDP_FRACTION * self.tdp_watts * seconds


def _rapl_domains() -> list[Path]:
    root = Path("/sys/class/powercap")
    if not root.exists():
        return []
    domains = [p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1]
    readable = []
    for d in domains:
        try:
            _read_uj(d)
            readable.append(d)
        except OSError:
            pass
    return readable


def _read_uj(domain: Path) -> int:
    return int((domain / "energy_uj").read_text())


def _max_range_uj(domain: Path) -> int:
    return int((domain / "max_energy_range_uj").read_text())


def _nvml_handles() -> list[object]:
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        for h in handles:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        return handles
    except Exception:
        return []


class ServerPower:
    """Energy of work done on a remote server: the local CPU's counter or TDP says nothing about it.

    Unknown (NaN, labelled so) unless the user gives the server's power; then estimated as
    watts × the request's service time, and labelled an estimate.
    """

    measured = False

    def __init__(self, watts: float | None):
        if watts is not None and not (watts > 0):
            raise ValueError(f"server_watts must be a positive number, got {watts}")
        self.watts = watts

    @property
    def method(self) -> str:
        if self.watts is None:
            return UNKNOWN_REMOTE
        return f"estimated ({self.watts:g} W server power × service time)"

    def span(self) -> ServerPower:
        return self

    def joules(self, seconds: float) -> float:
        return float("nan") if self.watts is None else self.watts * seconds


UNKNOWN_REMOTE = "unknown (remote server; pass -B server_watts=W for an estimate)"


def energy_known(method: str) -> bool:
    return not method.startswith("unknown")


def meter_for(backend: object, tdp_watts: float = DEFAULT_TDP_WATTS, counter: str = "auto") -> EnergyMeter | ServerPower:
    """A remote backend's energy is the server's, not this machine's; local backends read counters here."""
    if getattr(backend, "remote", False):
        return ServerPower(getattr(backend, "server_watts", None))
    return EnergyMeter(tdp_watts, counter)
