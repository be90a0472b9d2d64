"""From a sweep's verdict to a model in use: the chosen config's model in MLflow's Model Registry, under an alias.

    report.register=mnist_mlp report.choose=cheapest     # at a sweep's end
    mlp-sweep report --register mnist_mlp --choose best  # on a stored sweep

Three steps, each a small function:

1. :func:`choose_config` reads the report's summary: ``best`` is the best on validation;
   ``cheapest`` the config with the lowest first cost in ``report.costs`` among those the
   seeds do not show worse than the best (``vs_best`` is not ``below``) or, where a margin
   is set, those shown equivalent to it (and the best itself).
2. :func:`choose_seed`: of that config's runs, the one whose validation accuracy is closest
   to the config's mean (ties: the lower seed), among those that logged a model: a typical
   seed, not the luckiest, so the model behaves as the table says the config does.
3. :func:`register`: a version for that run's logged model (``models:/m-…``), none if the
   name already holds one for it; the alias moves only when it pointed elsewhere. The
   version is tagged with the sweep's parent run, the config's label, the rule and the verdict.

Serve or load it by alias: ``models:/<name>@<alias>`` (docs/tracking.md).
"""

import contextlib
import math
from dataclasses import dataclass

import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlp_sweep import choices, names
from mlp_sweep.errors import TrackingError
from mlp_sweep.reporting import pareto

EQUIVALENT = "equivalent"  # the start of a verdict shown equivalent to the best (``equivalent ±0.3``)
BELOW = "below"  # vs_best of a config shown worse than the best
# The version's tags: what chose it, from which sweep.
TAG_SWEEP_RUN = "mlp_sweep.sweep_run"
TAG_CONFIG = "mlp_sweep.config"
TAG_RULE = "mlp_sweep.rule"
TAG_VERDICT = "mlp_sweep.verdict"
TAG_RUN = "mlp_sweep.run"
TAG_SEED = "mlp_sweep.seed"
TAG_WRITABLE = "mlp_sweep.writable"  # on the registered model: set where a server's permission is checked


@dataclass(frozen=True)
class Choice:
    """The config a rule chose from a summary, and the seed run whose model stands for it."""

    group: str  # what the config's seeds share (the summary's ``group``)
    config: str  # its label in the table
    rule: str  # ``best``, or ``cheapest by n_params``
    verdict: str  # its verdict (or ``vs best``) in the table
    run_id: str = ""
    run_name: str = ""
    seed: int | None = None
    model_uri: str = ""


@dataclass(frozen=True)
class Registered:
    """Where a choice landed in the registry."""

    name: str
    alias: str
    version: str
    choice: Choice
    new_version: bool  # False: the name already held a version of this logged model
    previous: str | None  # the version the alias pointed at before (None: it was unset)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}"

    @property
    def moved(self) -> bool:
        return self.previous != self.version

    def line(self) -> str:
        """``Registered mlp2-bn (seed 1, run …) as models:/mnist_mlp@champion (version 3, new; …)``."""
        made = "new" if self.new_version else "already registered"
        alias = (
            f"alias moved from version {self.previous}"
            if self.moved and self.previous
            else "alias set"
            if self.moved
            else "alias unchanged"
        )
        c = self.choice
        return (
            f"Registered {c.config} (rule {c.rule}; seed {c.seed}, run {c.run_name} {c.run_id}) "
            f"as {self.uri} (version {self.version}, {made}; {alias})."
        )


def rule_text(rule: str, costs: list[str] | tuple[str, ...]) -> str:
    """``best`` or ``cheapest by n_params``: the rule as the version's tag and the report name it."""
    return f"cheapest by {costs[0]}" if rule == "cheapest" else rule


def eligible(summary: pd.DataFrame) -> pd.Series:
    """The configs ``cheapest`` may pick: the best; with a margin (a ``verdict`` column), those shown equivalent
    to it; without one, those not shown worse than it."""
    best = summary["rank"] == 1
    if "verdict" in summary:
        return best | summary["verdict"].fillna("").astype(str).str.startswith(EQUIVALENT)
    return best | (summary["vs_best"] != BELOW)


def choose_config(summary: pd.DataFrame, rule: str, costs: list[str] | tuple[str, ...]) -> pd.Series:
    """The summary's row of the config ``rule`` chooses (summary best first, as :func:`frame.summarize` gives it).

    ``cheapest``: the lowest first cost among the :func:`eligible` configs; a tie, or a cost no config logged,
    goes to the one higher in the table (better on validation)."""
    if rule not in choices.REPORT_CHOOSE:
        raise ValueError(f"unknown rule {rule!r}: choose one of {', '.join(choices.REPORT_CHOOSE)}")
    if rule == "best":
        return summary.loc[summary["rank"].idxmin()]
    if not costs:
        raise ValueError("the cheapest rule needs a cost: give one in report.costs")
    candidates = summary[eligible(summary)].assign(_cost=pareto.cost_column(summary, costs[0]))
    return candidates.sort_values(["_cost", "rank"], na_position="last").iloc[0].drop("_cost")


def seed_order(runs: pd.DataFrame, group: str) -> pd.DataFrame:
    """A config's comparable runs, the one closest to the config's mean validation accuracy first (ties: the lower
    seed, then the run id), so that the model registered is a typical seed's."""
    seeds = runs[(runs["group"] == group) & runs["left_out"].isna()]
    distance = (seeds[names.OBJECTIVE] - seeds[names.OBJECTIVE].mean()).abs()
    seed = pd.to_numeric(seeds["seed"], errors="coerce")
    if "params.trainer.seed" in seeds:  # runs without the seed tag: their param
        seed = seed.fillna(pd.to_numeric(seeds["params.trainer.seed"], errors="coerce"))
    ordered = seeds.assign(_distance=distance, seed=seed).sort_values(["_distance", "seed", "run_id"])
    return ordered.drop(columns="_distance")


def choose_seed(client: MlflowClient, runs: pd.DataFrame, choice: Choice) -> Choice:
    """The choice with its seed: :func:`seed_order`'s first run that logged a model."""
    ordered = seed_order(runs, choice.group)
    for row in ordered.itertuples():
        uri = client.get_run(row.run_id).data.tags.get(names.TAG_MODEL_URI)
        if uri:
            seed = None if row.seed is None or (isinstance(row.seed, float) and math.isnan(row.seed)) else int(row.seed)
            return Choice(choice.group, choice.config, choice.rule, choice.verdict, row.run_id, row.run_name, seed, uri)
    raise TrackingError(
        f"config {choice.config} has no run with a logged model ({len(ordered)} run(s) of it, none tagged "
        f"{names.TAG_MODEL_URI}): run the sweep with tracking.log_model=true to register it"
    )


def pick(summary: pd.DataFrame, rule: str, costs) -> Choice:
    """The config ``rule`` chooses from the summary, with its verdict (or ``vs best``): no seed yet."""
    row = choose_config(summary, rule, costs)
    verdict = row.get("verdict")
    verdict = verdict if isinstance(verdict, str) else str(row["vs_best"])
    return Choice(row["group"], row["config"], rule_text(rule, costs), verdict)


def choose(client: MlflowClient, summary: pd.DataFrame, runs: pd.DataFrame, rule: str, costs) -> Choice:
    """The config ``rule`` chooses from the summary and the seed run that stands for it."""
    return choose_seed(client, runs, pick(summary, rule, costs))


def model_id(model_uri: str) -> str:
    """``m-…`` of a ``models:/m-…`` URI."""
    return model_uri.removeprefix("models:/").split("/")[0]


def model_source(client: MlflowClient, model_uri: str) -> str:
    """Where the logged model's files are: the source a version is made from. (Given ``models:/m-…``, MLflow's SQL
    registry would look the model up in the process-wide tracking store, not this client's.)"""
    return client.get_logged_model(model_id(model_uri)).artifact_location


def existing_version(client: MlflowClient, name: str, model_uri: str, source: str) -> ModelVersion | None:
    """The version of ``name`` that already holds this logged model, if any (the oldest)."""
    wanted = model_id(model_uri)
    versions = client.search_model_versions(f"name = '{name}'")
    same = [v for v in versions if v.source in (source, model_uri) or (v.model_id and v.model_id == wanted)]
    return min(same, key=lambda v: int(v.version)) if same else None


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version the alias points at now, or None where it is unset."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as e:
        if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    """Create the registered model where it does not exist yet."""
    try:
        client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(
            name, description="Registered by mlp_sweep from a sweep's report (docs/report.md)."
        )


def version_tags(choice: Choice, parent_run_id: str) -> dict[str, str]:
    tags = {
        TAG_SWEEP_RUN: parent_run_id,
        TAG_CONFIG: choice.config,
        TAG_RULE: choice.rule,
        TAG_VERDICT: choice.verdict,
        TAG_RUN: choice.run_id,
    }
    return tags | ({TAG_SEED: str(choice.seed)} if choice.seed is not None else {})


def register(client: MlflowClient, name: str, alias: str, choice: Choice, parent_run_id: str) -> Registered:
    """Register the choice's logged model under ``name`` (no new version where one holds it already), tag the
    version, and point ``alias`` at it (untouched where it already does)."""
    with permission_errors(client, name):
        ensure_registered_model(client, name)
        source = model_source(client, choice.model_uri)
        found = existing_version(client, name, choice.model_uri, source)
        version = found or client.create_model_version(
            name, source, run_id=choice.run_id, model_id=model_id(choice.model_uri)
        )
        for key, value in version_tags(choice, parent_run_id).items():
            client.set_model_version_tag(name, str(version.version), key, value)
        previous = alias_version(client, name, alias)
        if previous != str(version.version):
            client.set_registered_model_alias(name, alias, str(version.version))
    return Registered(name, alias, str(version.version), choice, found is None, previous)


@contextlib.contextmanager
def permission_errors(client: MlflowClient, name: str):
    """A server's refusal to register (PERMISSION_DENIED) as one TrackingError line naming the fix."""
    try:
        yield
    except MlflowException as e:
        if e.error_code != "PERMISSION_DENIED":
            raise
        raise TrackingError(refusal(client.tracking_uri, name)) from e


def refusal(uri: str, name: str) -> str:
    from mlp_sweep.store import login, redaction

    user = login.login_name()
    return (
        f"user {user} may not register models as {name} on {redaction.redacted(uri)}: ask the server's admin for "
        f"EDIT on registered model {name} (or leave report.register unset)"
    )


def check_may_register(client: MlflowClient, name: str) -> None:
    """Raise TrackingError before any training when this login may not register under ``name`` on a server.

    A server's permissions are checked only on a write: the registered model is created where it does not
    exist (the permission creating it takes), else a tag is written on it (the permission a new version takes).
    """
    if not client.tracking_uri.startswith(("http://", "https://")):
        return
    with permission_errors(client, name):
        try:
            client.set_registered_model_tag(name, TAG_WRITABLE, "true")
        except MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            ensure_registered_model(client, name)
