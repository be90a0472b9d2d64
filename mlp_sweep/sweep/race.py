"""A race of seeds: each config gets seeds while its comparison with the best is undecided.

The rounds, in the form of irace's F-Race and tidymodels' ``tune_race_anova``:

1. every config gets ``min_seeds`` seeds;
2. after each round the best is chosen again (highest mean validation
   accuracy), and every other config still in the race whose seed count grew
   is tested against it (:class:`~mlp_sweep.reporting.verdicts.SequentialRule`):
   it leaves once it is ``worse`` or ``equivalent``, or once it reaches
   ``max_seeds`` (``undecided``);
3. the configs still in, and the best while any remain, get one more seed.

This module is the bookkeeping alone, plain Python on accuracies: the
simulation of tests/reporting/test_race_errors.py runs it without training,
and :mod:`mlp_sweep.sweep.race_launch` runs it through Hydra's launcher.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mlp_sweep.reporting.verdicts import BEST, UNDECIDED, SequentialRule, choose_best, compare

RACING, FAILED = "racing", "failed"


@dataclass
class Race:
    """Who is in the race, each config's accuracies in seed order, and the record of who left when and why."""

    rule: SequentialRule
    configs: Sequence[str]
    values: dict[str, list[float]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    looked_at: dict[str, int] = field(default_factory=dict)  # seed count at each config's last look
    rounds: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        for config in self.configs:
            self.values.setdefault(config, [])
            self.status.setdefault(config, RACING)
            self.looked_at.setdefault(config, 0)

    def racing(self) -> list[str]:
        return [c for c in self.configs if self.status[c] == RACING]

    @property
    def done(self) -> bool:
        return not self.racing()

    def next_seeds(self) -> list[tuple[str, int]]:
        """The (config, seed index) pairs of the next round; empty once the race is over."""
        racing = self.racing()
        if not self.rounds:  # the first round: min_seeds each
            return [(c, i) for c in racing for i in range(len(self.values[c]), self.rule.min_seeds)]
        return [(c, len(self.values[c])) for c in racing if len(self.values[c]) < self.rule.max_seeds]

    def spare_seeds(self, count: int, planned: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """Up to ``count`` seeds beyond the ``planned`` round, for workers that would otherwise wait for the
        round to end: the next seed of the configs likeliest to need it, the best first (it races while any other
        does), then the others least far from the best in standard errors. A spare seed that turns out not to be
        needed is still a grid point a fixed grid would train; a look then sees more seeds, never more looks."""
        racing = [c for c in self.racing() if self.values[c]]
        if count <= 0 or not racing:
            return []
        best = choose_best({c: self.values[c] for c in racing})

        def distance(config: str) -> float:
            comparison = compare(self.values[config], self.values[best])
            return (
                -1.0
                if config == best
                else abs(comparison.diff / comparison.se)
                if comparison and comparison.se
                else 0.0
            )

        last = {c: max([i for k, i in planned if k == c], default=len(self.values[c]) - 1) for c in racing}
        spare = [(c, last[c] + 1) for c in sorted(racing, key=distance) if last[c] + 1 < self.rule.max_seeds]
        return spare[:count]

    def add(self, config: str, seed_index: int, value: float | None) -> None:
        """A seed's validation accuracy (None: its job failed, and the config leaves the race)."""
        if value is None:
            self.status[config] = FAILED
            return
        if seed_index != len(self.values[config]):
            raise ValueError(f"{config}: seed {seed_index} arrived before seed {len(self.values[config])}")
        self.values[config].append(float(value))

    def look(self) -> dict:
        """Test every config whose seed count grew against the current best; record and return the round."""
        racing = [c for c in self.racing() if self.values[c]]
        record: dict = {"round": len(self.rounds) + 1, "seeds": {c: len(self.values[c]) for c in self.configs}}
        left = []
        if racing:
            best = choose_best({c: self.values[c] for c in racing})
            record["best"] = best
            for config in racing:
                n = len(self.values[config])
                if config == best or n < self.rule.min_seeds or n == self.looked_at[config]:
                    continue
                self.looked_at[config] = n
                comparison = compare(self.values[config], self.values[best])
                verdict = UNDECIDED if comparison is None else comparison.verdict(self.rule.margin, self.rule.level)
                if verdict == UNDECIDED and n < self.rule.max_seeds:
                    continue
                self.status[config] = verdict
                left.append(
                    {
                        "config": config,
                        "n": n,
                        "verdict": verdict,
                        "vs": best,
                        "diff": comparison.diff if comparison else None,
                        "interval": list(comparison.interval(self.rule.level)) if comparison else None,
                    }
                )
            if all(c == best or self.status[c] != RACING for c in racing):  # the best stands alone: it wins
                self.status[best] = BEST
                left.append({"config": best, "n": len(self.values[best]), "verdict": BEST})
        record["left"] = left
        self.rounds.append(record)
        return record

    def verdicts(self) -> dict[str, str]:
        """Each config's verdict as it left the race (``racing`` for one still in)."""
        return dict(self.status)

    def as_record(self) -> dict:
        """What the parent run keeps of the race: its rule, its rounds, each config's verdict and seed count."""
        return {
            "rule": self.rule.name(),
            "alpha": self.rule.alpha,
            "margin_points": 100 * self.rule.margin,
            "min_seeds": self.rule.min_seeds,
            "max_seeds": self.rule.max_seeds,
            "verdicts": self.verdicts(),
            "seeds": {c: len(v) for c, v in self.values.items()},
            "rounds": self.rounds,
        }


def simulate(rule: SequentialRule, means: Sequence[float], sd: float, rng: np.random.Generator) -> Race:
    """One race of synthetic accuracies: config i's seeds are drawn from Normal(means[i], sd); no training."""
    race = Race(rule, [f"c{i}" for i in range(len(means))])
    while not race.done:
        for config, index in race.next_seeds():
            race.add(config, index, rng.normal(means[int(config[1:])], sd))
        race.look()
    return race
