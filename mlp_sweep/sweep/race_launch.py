"""A grid run as a race (``hydra/sweeper=race``): seeds go where the comparison is still undecided.

    python -m mlp_sweep -m model=mlp2,mlp3,mlp5 reg=none,bn,bn_dropout hydra/sweeper=race race.margin=0.3

The grid is expanded as Hydra's basic sweeper expands it; each of its configs
is a contestant of :class:`mlp_sweep.sweep.race.Race`. Each round is one
batch for the sweep's launcher (basic, parallel, Ray, Slurm), ordered longest
job first and filled up to a multiple of the launcher's workers with spare
seeds, so that the workers finish together. A job's seed is the first seed
(``trainer.seed``) plus its index, so a race's runs are the grid points a
fixed grid trains: the run identity reuses a finished run whichever of the two
trained it, and the same command run again replays the race from the store
without training anything. The parent run keeps the race's record
(``race.json``: its rule, rounds, and who left when and why) and its idle share.

The Hydra plugin (hydra_plugins/mlp_sweep_race) is a thin shim over :func:`sweep`.
"""

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig

from mlp_sweep import compat, names, policy
from mlp_sweep.errors import ConfigError, MlpSweepError
from mlp_sweep.reporting.verdicts import SequentialRule
from mlp_sweep.store import identity, resume
from mlp_sweep.sweep import refusal
from mlp_sweep.sweep.race import Race

log = logging.getLogger(__name__)
MNIST_INPUTS = 784  # the input width a job's predicted cost assumes


def is_race(config: DictConfig) -> bool:
    """Whether the sweep is a race (hydra/sweeper=race) rather than a grid or a search."""
    return "mlp_sweep_race" in str(config.hydra.sweeper.get("_target_", ""))


@dataclass(frozen=True)
class RaceGrid:
    """The configs a race command runs, its first seed and its rule, read from its config before anything trains."""

    configs: list[list[str]]  # the grid: each config's overrides
    first_seed: int
    rule: SequentialRule
    swept: tuple[str, ...]  # the keys the grid varies

    @property
    def names(self) -> list[str]:
        """Each config as the race's record names it: the values of the keys the grid varies (``model=mlp2
        reg=none``)."""
        return [" ".join(o for o in c if o.split("=", 1)[0] in self.swept) or "(the config)" for c in self.configs]

    def job(self, config: int, seed_index: int) -> list[str]:
        return [*self.configs[config], f"trainer.seed={self.first_seed + seed_index}"]


def race_grid(cfg: DictConfig, arguments: Sequence[str]) -> RaceGrid:
    """Expand the race's grid; refuse a race it cannot run (bad settings, a swept seed, a search), with the fix."""
    problems = policy.race_problems(cfg.race)
    if problems:
        raise ConfigError(f"invalid config: {problems[0]}")
    if cfg.hydra.runtime.choices.get("hparams_search") is not None or cfg.hydra.sweeper.get("params"):
        raise ConfigError(
            "a race runs a grid: it cannot be combined with a search (hparams_search=...); drop one of the two"
        )
    overrides = OverridesParser.create().parse_overrides(list(arguments))
    if any(o.key_or_group == "trainer.seed" and o.is_sweep_override() for o in overrides):
        raise ConfigError(
            "trainer.seed is swept by the race (seeds first..first+race.max_seeds-1): give one first seed, "
            "e.g. trainer.seed=0, and set race.min_seeds / race.max_seeds"
        )
    configs = compat.basic_sweeper_grid(overrides)
    margin = policy.race_margin(cfg) / 100
    rule = SequentialRule(cfg.race.alpha, margin, cfg.race.min_seeds, cfg.race.max_seeds, configs=len(configs))
    return RaceGrid(configs, cfg.trainer.seed, rule, tuple(identity.varying_keys(list(arguments))))


def value(result: JobReturn) -> float | None:
    """A finished job's validation accuracy (its final metrics' ``val_accuracy``); None for a failed or
    unfinished one."""
    metrics = result.return_value if result.status == JobStatus.COMPLETED else None
    if not metrics or names.PRUNED_AT in metrics or names.TEST_ACCURACY not in metrics:
        return None
    return float(metrics[names.OBJECTIVE])


def predicted_cost(sweeper, overrides: Sequence[str]) -> float:
    """A job's cost before any has run: its epochs × its layers' multiply-adds an example, the job's config
    composed as its launcher will compose it (the data's input width, unknown until a job reads it, is taken to
    be MNIST's: the cost only orders jobs)."""
    cfg = sweeper.hydra_context.config_loader.load_sweep_config(sweeper.config, list(overrides))
    widths = [MNIST_INPUTS, *cfg.model.widths]
    return float(cfg.trainer.epochs * sum(a * b for a, b in zip(widths, widths[1:], strict=False)))


def launcher_workers(cfg: DictConfig) -> int:
    """How many jobs the sweep's launcher runs at once, where its config says: joblib's ``n_jobs`` (−1: every
    core), submitit's ``array_parallelism``; else 1 (the basic launcher; Ray's workers are the cluster's)."""
    launcher = cfg.hydra.launcher
    count = launcher.get("n_jobs") or launcher.get("array_parallelism") or 1
    return (os.cpu_count() or 1) if count < 0 else int(count)


def longest_first(
    jobs: list[tuple[int, int]], seconds: dict[int, float], predicted: dict[int, float]
) -> list[tuple[int, int]]:
    """The round's jobs, longest first, so that a launcher that hands jobs to workers as they free up ends the
    round with its workers busy together: a config's time so far where it has one, else its predicted cost at
    the seconds per unit the measured configs took."""
    measured = [seconds[c] / predicted[c] for c in seconds if predicted.get(c)]
    rate = sum(measured) / len(measured) if measured else 1.0
    return sorted(jobs, key=lambda job: -seconds.get(job[0], rate * predicted.get(job[0], 0.0)))


def run_race(sweeper, arguments: Sequence[str]) -> list[Sequence[JobReturn]]:
    """Run the rounds until every config has left the race; record the race on the parent run."""
    cfg = sweeper.config
    grid = race_grid(cfg, arguments)
    names_ = grid.names
    race = Race(grid.rule, names_)
    index = {name: i for i, name in enumerate(names_)}
    seconds: dict[int, float] = {}
    predicted = {c: predicted_cost(sweeper, grid.job(c, 0)) for c in range(len(names_))}
    workers = launcher_workers(cfg)
    hashes: dict[str, str] = {}
    log.info(
        "race of %d configs: %d seeds each, then one more a round while undecided (up to %d); margin %.3g points, "
        "α %.3g",
        len(names_),
        grid.rule.min_seeds,
        grid.rule.max_seeds,
        100 * grid.rule.margin,
        grid.rule.alpha,
    )
    Path(cfg.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
    returns, job_idx, started = [], 0, time.time()
    while not race.done:
        planned = race.next_seeds()
        if race.rounds:  # after the first round: fill the round up to a multiple of the workers
            planned += race.spare_seeds(-len(planned) % workers, planned)
        jobs = longest_first([(index[c], i) for c, i in planned], seconds, predicted)
        if not jobs:
            break
        sweeper.validate_batch_is_legal([grid.job(c, i) for c, i in jobs])
        results = sweeper.launcher.launch([grid.job(c, i) for c, i in jobs], initial_job_idx=job_idx)
        for (config, seed_index), result in sorted(zip(jobs, results, strict=True)):
            race.add(names_[config], seed_index, value(result))
            if result.status == JobStatus.COMPLETED and result.return_value:
                seconds[config] = float(result.return_value.get(names.TRAIN_TIME, 0.0))
            if result.cfg is not None:  # the job's config, as its run hashed it: the report's key to the verdicts
                hashes[names_[config]] = identity.config_hash(result.cfg)
        for left in race.look()["left"]:
            log.info("round %d: %s", len(race.rounds), leaving_line(left))
        job_idx += len(jobs)
        returns.append(results)
    record_race(sweeper, race, hashes, started)
    return returns


def leaving_line(left: dict) -> str:
    """``model=mlp2 reg=none leaves worse after 3 seeds (Δ −1.20 points)``."""
    text = f"{left['config']} leaves {left['verdict']} after {left['n']} seeds"
    return text + (f" (Δ {100 * left['diff']:+.2f} points)" if left.get("diff") is not None else "")


def record_race(sweeper, race: Race, hashes: dict[str, str], started: float) -> None:
    """The race's record and idle share on the parent run, and a line on how it went."""
    sweep = refusal.sweep_callback(sweeper)
    if sweep is None or sweep.parent_run_id is None:
        return
    client = sweep.client
    parent = client.get_run(sweep.parent_run_id)
    idle = idle_share(resume.child_runs(client, parent), started, time.time())
    record = race.as_record() | {"config_hashes": hashes, "idle_share": idle}
    client.log_dict(sweep.parent_run_id, record, names.RACE_RECORD)
    client.set_tag(sweep.parent_run_id, names.TAG_RACE, "true")
    runs = sum(record["seeds"].values())
    idle_text = "–" if idle is None else f"{100 * idle:.0f}%"
    print(f"Race: {runs} runs in {len(race.rounds)} rounds; idle share {idle_text}", flush=True)


def idle_share(runs: Sequence, started: float, ended: float) -> float | None:
    """Worker-time not spent in a run, over workers × wall time; the workers are the most runs seen at once.

    Read from the runs' start and end times, so it holds for any launcher. None where no run trained.
    """
    spans = [(r.info.start_time / 1000, r.info.end_time / 1000) for r in runs if r.info.end_time and r.info.start_time]
    if not spans:
        return None
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    workers, running = 0, 0
    for _, step in events:
        running += step
        workers = max(workers, running)
    wall = max(ended, max(e for _, e in spans)) - min(started, min(s for s, _ in spans))
    busy = sum(e - s for s, e in spans)
    return max(0.0, 1 - busy / (workers * wall)) if wall > 0 else None


def sweep(sweeper, arguments: Sequence[str]) -> list[Sequence[JobReturn]]:
    """The race, or one ``error:`` line for a race it refuses (the sweep's parent run then ends FAILED)."""
    try:
        return run_race(sweeper, arguments)
    except MlpSweepError as e:
        refusal.refuse(sweeper, e)
