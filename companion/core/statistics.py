"""Paired differences with a 95% t interval over seeds, without scipy (not in the book's environment).

The experiment (:mod:`companion.training.experiment`) fine-tunes each seed twice from the same phase-1 weights and the same
batches, as written and with the remedy; the difference per seed is a pair, and the mean of the pairs with its
t interval says how large the remedy's gain is and how sure the seeds make it. Values stay numbers here
(:class:`PairedDifference`, :class:`Finding`); the chapters' tables turn them into text.
"""

from __future__ import annotations

import dataclasses
import enum
import math

CONFIDENCE = 0.95
POWER = 0.8  # the probability of detecting a true difference that a power calculation asks for


class Finding(enum.Enum):
    """What a paired difference says at 95%: the interval lies above zero, below it, straddles it, or there is
    no interval (one seed)."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    NO_DIFFERENCE = "no difference detected"
    ONE_SEED = "one seed: no interval"


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """Mean of the per-seed differences ``b - a`` and its 95% t interval (``low``/``high`` None for one seed)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    sd: float | None = None  # the standard deviation of the per-seed differences (None for one seed)

    @property
    def finding(self) -> Finding:
        if self.low is None:
            return Finding.ONE_SEED
        if self.low > 0:
            return Finding.POSITIVE
        if self.high < 0:
            return Finding.NEGATIVE
        return Finding.NO_DIFFERENCE

    def scaled(self, factor: float) -> PairedDifference:
        """The same difference in other units (``scaled(100)``: fractions to points)."""
        scale = lambda v: None if v is None else v * factor  # noqa: E731
        return PairedDifference(self.mean * factor, scale(self.low), scale(self.high), self.n, scale(self.sd))

    def detectable(self, power: float = POWER) -> float | None:
        """The smallest true difference a paired t test at 95% (two-sided) detects with probability ``power``, at
        these seeds' spread and number: (t_{0.975, n-1} + t_{power, n-1}) * sd / sqrt(n). None for one seed."""
        return None if self.sd is None else detectable_difference(self.sd, self.n, power)

    def pairs_needed(self, difference: float, power: float = POWER) -> int | None:
        """How many pairs, at these seeds' spread, would detect a true ``difference`` with probability ``power``
        (at least 2; None for one seed, or where even 1000 would not)."""
        if self.sd is None:
            return None
        return next((n for n in range(2, 1001) if detectable_difference(self.sd, n, power) <= difference), None)


def paired_difference(a: list[float], b: list[float]) -> PairedDifference:
    """The mean of ``b[i] - a[i]`` with the t interval mean +- t_{0.975, n-1} * s / sqrt(n)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"a paired difference needs as many values on each side, at least one: got {len(a)} and "
                         f"{len(b)}")
    differences = [y - x for x, y in zip(a, b)]
    n = len(differences)
    mean = sum(differences) / n
    if n == 1:
        return PairedDifference(mean, None, None, 1)
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    half = t_quantile(1 - (1 - CONFIDENCE) / 2, n - 1) * sd / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, n, sd)


def detectable_difference(sd: float, n: int, power: float = POWER) -> float:
    """The smallest true mean difference that ``n`` pairs whose differences have standard deviation ``sd`` detect
    with probability ``power`` in a two-sided paired t test at 95% (the usual approximation, which sizes the test by
    the t quantiles of n - 1 degrees of freedom)."""
    if n < 2:
        raise ValueError(f"a paired t test needs at least 2 pairs, got {n}")
    return (t_quantile(1 - (1 - CONFIDENCE) / 2, n - 1) + t_quantile(power, n - 1)) * sd / math.sqrt(n)


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (0.5 < p < 1), by bisection on the CDF."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and df >= 1, got p={p}, df={df}")
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for t >= 0: 1 - I_x(df/2, 1/2) / 2 with x = df / (df + t^2) (the regularized incomplete beta)."""
    return 1 - 0.5 * _incomplete_beta(df / (df + t * t), df / 2, 0.5)


def _incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast only below this point: use the symmetry
        return 1 - _incomplete_beta(1 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)) / a
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return front * result
