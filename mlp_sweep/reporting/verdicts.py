"""What a comparison with the best can conclude, and how many seeds it would take to conclude it.

Without a margin the table can only say *not shown to differ* (``≈ best``),
which is no evidence that two configs are equal. With a margin ``m`` (in
points of validation accuracy) each config gets one of four verdicts:

- ``best``;
- ``worse``: shown below the best (a one-sided Welch test);
- ``equivalent ±m``: the difference's interval lies inside ±m (TOST: both
  one-sided tests reject, i.e. the (1 − 2α) Welch interval is inside ±m);
- ``undecided``: neither, yet.

For an undecided config, :func:`seeds_needed` gives the seeds per config that
each test needs for 80% power at the observed difference and spread (the
noncentral t of :mod:`scipy.stats`), and which test is nearer.

A race (:mod:`mlp_sweep.sweep.race`) tests after every round; testing at α at
every look would inflate its error rates (optional stopping), so
:class:`SequentialRule` spends α over the planned looks (Bonferroni): a config
is tested at most once per seed count from ``min_seeds`` to ``max_seeds``,
each time at ``α / looks``. tests/reporting/test_race_errors.py shows by
simulation that this holds both error rates at α, and that testing at α at
every look does not.

Plain numpy and scipy: no MLflow, no pandas.
"""

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

POWER = 0.8  # the power :func:`seeds_needed` plans for
MAX_SEEDS_PLANNED = 1000  # beyond this a decision is out of reach: shown as "> 1000"
WORSE, EQUIVALENT, UNDECIDED, BEST = "worse", "equivalent", "undecided", "best"


@dataclass(frozen=True)
class Comparison:
    """One config against the best, in fractions of accuracy (0.01 = 1 point)."""

    diff: float  # mean(config) − mean(best), ≤ 0 for a best chosen on the same means
    se: float  # Welch's standard error of the difference
    df: float  # Welch–Satterthwaite degrees of freedom
    p_worse: float  # one-sided p-value of "the config is below the best"

    def interval(self, alpha: float) -> tuple[float, float]:
        """The (1 − 2α) interval of the difference: the one TOST at level α reads."""
        if self.se == 0:
            return self.diff, self.diff
        half = float(special.stdtrit(self.df, 1 - alpha)) * self.se  # Student's t quantile, at scipy.special's speed
        return self.diff - half, self.diff + half

    def verdict(self, margin: float, alpha: float) -> str:
        """``worse``, ``equivalent`` (within ±margin, a fraction) or ``undecided``, each test at level α."""
        if self.p_worse < alpha:
            return WORSE
        return EQUIVALENT if self.within(margin, alpha) else UNDECIDED

    def within(self, margin: float, alpha: float) -> bool:
        """TOST at level α: the (1 − 2α) interval of the difference lies inside ±margin."""
        low, high = self.interval(alpha)
        return -margin < low and high < margin


def compare(values: Sequence[float], best: Sequence[float]) -> Comparison | None:
    """Welch's comparison of a config's seeds with the best's; None where a side has fewer than two seeds."""
    a, b = np.asarray(values, float), np.asarray(best, float)
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = float(a.mean() - b.mean())
    if va + vb == 0:  # identical seeds on both sides: no noise to weigh
        return Comparison(diff, 0.0, math.inf, 0.0 if diff < 0 else 1.0)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    se = math.sqrt(va + vb)
    return Comparison(diff, se, df, float(special.stdtr(df, diff / se)))  # Student's t CDF


def variances(values: Sequence[float], best: Sequence[float]) -> tuple[float, float] | None:
    """The seed-to-seed variances a plan assumes for the config and the best: each side's own, a side with a
    single seed borrowing the other's; None where neither has two seeds."""
    own = [float(np.var(v, ddof=1)) if len(v) >= 2 else None for v in (values, best)]
    if own[0] is None and own[1] is None:
        return None
    return own[0] if own[0] is not None else own[1], own[1] if own[1] is not None else own[0]


def welch_at(n: int, spread: tuple[float, float]) -> tuple[float, float]:
    """The standard error and Welch–Satterthwaite degrees of freedom of a difference with n seeds a side."""
    v1, v2 = spread
    return math.sqrt((v1 + v2) / n), (n - 1) * (v1 + v2) ** 2 / (v1**2 + v2**2)


def power_worse(n: int, diff: float, spread: tuple[float, float], alpha: float, sided: int = 1) -> float:
    """Power of Welch's test with n seeds a side to show a difference ``diff`` (the noncentral t)."""
    se, df = welch_at(n, spread)
    return float(stats.nct.sf(stats.t.ppf(1 - alpha / sided, df), df, abs(diff) / se))


def power_equivalent(n: int, diff: float, spread: tuple[float, float], margin: float, alpha: float) -> float:
    """Power of TOST with n seeds a side to show |difference| < margin when the difference is ``diff``:
    1 − P(first test fails) − P(second fails), the usual lower bound (exact up to their joint failure)."""
    se, df = welch_at(n, spread)
    crit = stats.t.ppf(1 - alpha, df)
    fail = stats.nct.cdf(crit, df, (margin - abs(diff)) / se) + stats.nct.cdf(crit, df, (margin + abs(diff)) / se)
    return max(0.0, 1.0 - float(fail))


def smallest_n(power, start: int = 2) -> int | None:
    """The smallest n ≥ start (up to MAX_SEEDS_PLANNED) whose power reaches POWER; None where none does.

    Power grows with n, so a doubling search then a bisection finds it in a few dozen evaluations.
    """
    if power(MAX_SEEDS_PLANNED) < POWER:
        return None
    low, high = start, start
    while power(high) < POWER:
        low, high = high + 1, min(2 * high, MAX_SEEDS_PLANNED)
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if power(mid) < POWER else (low, mid)
    return low


@dataclass(frozen=True)
class SeedsNeeded:
    """Seeds per config for 80% power: to show the config worse, and to show it equivalent (None: out of reach)."""

    worse: int | None
    equivalent: int | None

    @property
    def nearer(self) -> str | None:
        """The test that needs fewer seeds."""
        options = [(n, name) for n, name in ((self.worse, WORSE), (self.equivalent, EQUIVALENT)) if n is not None]
        return min(options)[1] if options else None

    def text(self) -> str:
        """``8 seeds (worse)``, or ``> 1000`` where neither test can decide."""
        if self.nearer is None:
            return f"> {MAX_SEEDS_PLANNED}"
        return f"{min(n for n in (self.worse, self.equivalent) if n is not None)} seeds ({self.nearer})"


def seeds_needed(
    diff: float,
    spread: tuple[float, float] | None,
    margin: float | None,
    alpha_worse: float,
    alpha_equivalent: float,
    sided: int = 1,
) -> SeedsNeeded | None:
    """The seeds each config would need to decide at the observed difference and variances (``spread``: the
    config's and the best's); None without a spread.

    ``sided`` = 2 plans the two-sided test the grid's table makes (its `below`), 1 the race's one-sided one.
    """
    if spread is None or not all(math.isfinite(v) for v in spread) or sum(spread) == 0 or not math.isfinite(diff):
        return None
    worse = None if diff == 0 else smallest_n(lambda n: power_worse(n, diff, spread, alpha_worse, sided))
    equivalent = None
    if margin is not None and abs(diff) < margin:
        equivalent = smallest_n(lambda n: power_equivalent(n, diff, spread, margin, alpha_equivalent))
    return SeedsNeeded(worse, equivalent)


@dataclass(frozen=True)
class SequentialRule:
    """The race's tests: α spent over the planned looks (Bonferroni), one look per seed count.

    A config is looked at each time its seed count reaches a new value from
    ``min_seeds`` to ``max_seeds``: at most ``looks`` times, each at ``α / looks``,
    so the chance of any false verdict over the whole race stays at most α
    (the union bound). ``naive`` tests at α at every look: the rule the
    simulation shows to break the bound.
    """

    alpha: float
    margin: float  # a fraction of accuracy (0.003 = 0.3 points)
    min_seeds: int
    max_seeds: int
    configs: int = 2  # configs that start the race: each may be compared with any other as the best
    naive: bool = False

    @property
    def looks(self) -> int:
        return self.max_seeds - self.min_seeds + 1

    @property
    def tests(self) -> int:
        """The tests one config can face: one a look, against any of the other configs as the best."""
        return self.looks * max(1, self.configs - 1)

    @property
    def level(self) -> float:
        """The level of each look's tests."""
        return self.alpha if self.naive else self.alpha / self.tests

    def name(self) -> str:
        """The rule as the report's footnote names it."""
        if self.naive:
            return f"α = {self.alpha} at every look (no correction)"
        return (
            f"Bonferroni over the race's {self.looks} planned looks (n = {self.min_seeds}…{self.max_seeds} seeds) "
            f"and the {max(1, self.configs - 1)} other config(s) each may be compared with as the best: each test at "
            f"α/{self.tests} = {self.level:.3g} (α = {self.alpha} over the whole race)"
        )

    def decide(self, values: Sequence[float], best: Sequence[float]) -> str:
        """This look's verdict of one config against the current best."""
        comparison = compare(values, best)
        return UNDECIDED if comparison is None else comparison.verdict(self.margin, self.level)


@dataclass(frozen=True)
class RaceVerdicts:
    """A race's rule and the verdict each config left it with, by config hash (its record on the parent run)."""

    rule: SequentialRule
    by_config_hash: Mapping[str, str]

    @classmethod
    def from_record(cls, record: Mapping) -> "RaceVerdicts":
        """From the parent run's race.json (:meth:`mlp_sweep.sweep.race.Race.as_record`)."""
        rule = SequentialRule(
            record["alpha"],
            record["margin_points"] / 100,
            record["min_seeds"],
            record["max_seeds"],
            configs=len(record["verdicts"]),
        )
        hashes = record.get("config_hashes", {})
        return cls(rule, {hashes[c]: v for c, v in record["verdicts"].items() if c in hashes})


def footnote(margin: float | None, race: RaceVerdicts | None) -> str:
    """What the verdict and seeds-to-decide columns mean, naming the error rule in force."""
    plan = (
        "seeds to decide: the seeds per config (for both the config and the best) that would give 80% power, at the "
        "observed difference and the root mean of the two configs' variances, to the nearer of the two tests "
        "(noncentral t); `> 1000` where neither can decide."
    )
    if race is not None:
        return (
            f"verdict: as the config left the race (margin ±{100 * race.rule.margin:g} points): worse (one-sided "
            f"Welch test below the best), equivalent (TOST: the difference's {100 * (1 - 2 * race.rule.level):.3g}% "
            "interval inside ±margin), undecided (neither at race.max_seeds). Error rule: "
            f"{race.rule.name()}; the chance of a false verdict for a config stays below α (docs/race.md). " + plan
        )
    if margin is None:
        return plan.replace("to the nearer of the two tests", "to show the difference (Welch, two-sided, 5%)")
    return (
        f"verdict (margin ±{margin:g} points): worse where `vs best` is below; equivalent where the difference's "
        "90% Welch interval lies inside ±margin (TOST at 5%: both one-sided tests reject); undecided otherwise "
        "(a single look: no sequential correction). " + plan
    )


def choose_best(values: Mapping[str, Sequence[float]]) -> str:
    """The config with the highest mean (ties: the first in order)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return max(values, key=lambda c: float(np.mean(values[c])))
