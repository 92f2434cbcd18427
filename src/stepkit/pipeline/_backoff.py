"""Retry delay strategies: small callables ``(attempt, exc) -> seconds``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from stepkit.errors import InvalidArgumentError


@dataclass(frozen=True, slots=True)
class exponential_backoff:
    """Exponential backoff with full jitter and a cap, for ``retry_delay=``.

    The delay before retry ``attempt`` (1 for the first retry) is drawn from
    ``[0, min(max_delay, base * factor ** (attempt - 1))]`` when ``jitter`` is
    true ("full jitter"), or is exactly that bound when it is false.

    >>> delay = exponential_backoff(base=0.5, factor=2, max_delay=10, jitter=False)
    >>> [delay(n, Exception()) for n in (1, 2, 3, 6)]
    [0.5, 1.0, 2.0, 10]
    """

    base: float = 0.1
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: bool = True
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("base", "factor", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidArgumentError(
                    f"exponential_backoff({name}=...) must be a number >= 0, got {value!r}"
                )
        if self.factor < 1:
            raise InvalidArgumentError(
                f"exponential_backoff(factor=...) must be >= 1, got {self.factor!r}"
            )

    def __call__(self, attempt: int, exc: BaseException) -> float:
        try:
            raw = self.base * self.factor ** max(attempt - 1, 0)
        except OverflowError:
            raw = float("inf")
        bound = min(self.max_delay, raw)
        return self.rng.uniform(0, bound) if self.jitter else bound
