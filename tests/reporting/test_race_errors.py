"""The race's error control, proved by simulation: synthetic accuracies, no training.

``python -m pytest -m slow tests/reporting/test_race_errors.py -s`` prints each rate.

A false ``worse``: a config as good as the best is declared worse. A false
``equivalent``: a config 1.5 margins below the best is declared equivalent.
The race's rule (Bonferroni over its looks and over the configs a config may
be compared with) keeps each at or below α within Monte-Carlo error; testing
at α at every look does not, which shows the test can fail.
"""

import math

import numpy as np
import pytest

from mlp_sweep.reporting.verdicts import EQUIVALENT, WORSE, SequentialRule
from mlp_sweep.sweep.race import simulate

ALPHA, MARGIN = 0.05, 0.003  # 0.3 points
TOP = 0.98


def rate(verdict: str, configs: int, gap: float, races: int, naive: bool, seed: int, sd: float | None = None):
    """The share of the non-top configs (true mean TOP − gap) that end with ``verdict``, and its Monte-Carlo SE.

    With ``sd`` None each race draws its seed-to-seed SD from 0.1–0.4 points.
    """
    rng = np.random.default_rng(seed)
    rule = SequentialRule(ALPHA, MARGIN, 3, 10, configs=configs, naive=naive)
    hits = trials = 0
    for _ in range(races):
        spread = sd if sd is not None else rng.uniform(0.001, 0.004)
        race = simulate(rule, [TOP] + [TOP - gap] * (configs - 1), spread, rng)
        others = list(race.configs) if gap == 0 else list(race.configs)[1:]  # equal configs: each can be wrong
        hits += sum(race.status[c] == verdict for c in others)
        trials += len(others)
    p = hits / trials
    spread = f"{100 * sd:.1f}" if sd is not None else "0.1–0.4"
    rule_name = "α at every look" if naive else "the race's rule"
    print(f"{verdict:>10} | {configs} configs | gap {100 * gap:.2f} pts | SD {spread} pts | {rule_name:<15} | {p:.4f}")
    return p, math.sqrt(ALPHA * (1 - ALPHA) / races)  # per race: the configs of one race are not independent


def within_alpha(p: float, se: float) -> bool:
    return p <= ALPHA + 2 * se


@pytest.mark.slow
@pytest.mark.parametrize("configs", [2, 4, 9])  # 9: the notebook's grid
def test_false_worse_stays_within_alpha_over_the_whole_race(configs):
    p, se = rate(WORSE, configs, 0.0, 2000, naive=False, seed=configs)
    assert within_alpha(p, se), f"false worse {p:.4f} > α {ALPHA} + 2 × {se:.4f}"
    naive, _ = rate(WORSE, configs, 0.0, 2000, naive=True, seed=configs)
    assert naive > ALPHA + 2 * se, f"α at every look should break the bound; it gave {naive:.4f}"


@pytest.mark.slow
@pytest.mark.parametrize("configs", [2, 9])
def test_false_equivalent_stays_within_alpha_over_the_whole_race(configs):
    p, se = rate(EQUIVALENT, configs, 1.5 * MARGIN, 2000, naive=False, seed=7)
    assert within_alpha(p, se), f"false equivalent at 1.5 margins {p:.4f} > α {ALPHA} + 2 × {se:.4f}"


@pytest.mark.slow
def test_at_the_margin_itself_alpha_at_every_look_breaks_the_equivalence_bound():
    # At the margin itself (the hardest case for TOST) and 0.2 points of noise, α at every look breaks the
    # bound; the race's rule holds it there too.
    naive, se = rate(EQUIVALENT, 2, MARGIN, 2000, naive=True, seed=8, sd=0.002)
    assert naive > ALPHA + 2 * se, f"α at every look should break the bound; it gave {naive:.4f}"
    held, se = rate(EQUIVALENT, 2, MARGIN, 2000, naive=False, seed=8, sd=0.002)
    assert within_alpha(held, se)


def test_a_short_simulation_tells_the_rules_apart():
    """The fast tier's version: 300 races of two equal configs at 0.4 points of noise."""
    strict, _ = rate(WORSE, 2, 0.0, 300, naive=False, seed=1, sd=0.004)
    naive, _ = rate(WORSE, 2, 0.0, 300, naive=True, seed=1, sd=0.004)
    assert strict < ALPHA < naive
