"""Scripted and random faults for the simulated Messages API, and per-number rules.

A ``FaultPlan`` holds no lock of its own: the Simulator reads and changes it under its lock.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from tripcomms.simulator.records import API_ERRORS

# Shorthands for HTTP-level faults, mapped to the Twilio code that comes with them.
HTTP_SHORTHANDS = {"429": 20429, "500": 20500, "503": 20503}


@dataclass(frozen=True)
class Outcome:
    """How the simulator answers one call to Messages create.

    ``ok`` processes the call normally; ``error`` answers Twilio's error ``code``;
    ``timeout`` sleeps past the client's timeout and then creates nothing; ``timeout-accepted``
    sleeps as long and then creates (and delivers) the message, the case where the client gave
    up on a request that Twilio had in fact accepted.
    """

    kind: Literal["ok", "error", "timeout", "timeout-accepted"]
    code: int | None = None


OK = Outcome("ok")


def parse_outcome(text: str) -> Outcome:
    """``"ok"``, ``"timeout"``, ``"timeout-accepted"``, ``"429"``/``"500"``/``"503"``, or a
    five-digit Twilio error code such as ``"21610"``. Raises ValueError otherwise."""
    value = str(text).strip().lower()
    if value in ("ok", "timeout", "timeout-accepted"):
        return Outcome(value)  # type: ignore[arg-type]
    if value in HTTP_SHORTHANDS:
        return Outcome("error", HTTP_SHORTHANDS[value])
    if value.isdigit() and len(value) == 5:
        return Outcome("error", int(value))
    raise ValueError(
        f"unknown outcome {text!r}: use ok, timeout, timeout-accepted, 429, 500, 503 "
        f"or a Twilio error code such as {', '.join(map(str, sorted(API_ERRORS)[:4]))}"
    )


@dataclass
class FaultPlan:
    """Everything that makes the simulated API misbehave; empty means a perfect Twilio."""

    script: deque[Outcome] = field(default_factory=deque)
    rates: list[tuple[float, Outcome]] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311
    latency: float = 0.0
    timeout_sleep: float = 2.0
    rejected_recipients: dict[str, int] = field(default_factory=dict)
    undeliverable_recipients: dict[str, int] = field(default_factory=dict)

    def add_script(self, outcomes: tuple[str, ...]) -> None:
        parsed = [parse_outcome(text) for text in outcomes]
        self.script.extend(parsed)

    def set_rates(self, rates: Mapping[str, float], seed: int | None) -> None:
        """Random faults: ``{"429": 0.10, "500": 0.05}``. Raises ValueError when a rate is out
        of range or the rates add up to more than 1."""
        parsed = []
        for text, rate in rates.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"rate for {text!r} must be between 0 and 1, not {rate!r}")
            parsed.append((float(rate), parse_outcome(text)))
        if sum(rate for rate, _ in parsed) > 1 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        self.rates = parsed
        self.rng = random.Random(seed)  # noqa: S311 (faults, not secrets)

    def next_outcome(self) -> Outcome:
        """The scripted outcome if one is queued, else a random draw, else ``ok``."""
        if self.script:
            return self.script.popleft()
        if self.rates:
            draw = self.rng.random()
            for rate, outcome in self.rates:
                if draw < rate:
                    return outcome
                draw -= rate
        return OK
