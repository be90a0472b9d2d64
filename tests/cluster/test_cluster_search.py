"""The smoke search on the clusters, its study in PostgreSQL: started on Slurm, continued
on Ray. The study, not the launcher, holds the search, so the same search moves from one
to the other as a team might, and the second command resumes the first one's study."""

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from cluster_helpers import ADMIN_PASSWORD, ALICE_PASSWORD, files_holding, login, on_slurm, smoke_args, sweeps
from helpers import requires, run_cli
from mlp_sweep import names

pytestmark = [
    pytest.mark.cluster,
    requires("hydra_plugins.hydra_submitit_launcher", "submitit", extra="slurm"),
    requires("hydra_plugins.hydra_ray_launcher", "ray", extra="ray"),
    requires("flask_wtf", extra="auth"),
    requires("psycopg", extra="postgres"),
]
EXPERIMENT = "cluster_search"


def test_the_search_starts_on_slurm_and_continues_on_ray_with_its_study_in_postgresql(
    cluster, team_server, tiny_mnist, tmp_path, monkeypatch
):
    env = team_server.user_env(cluster)
    search = [
        "hparams_search=mlp_optuna",
        "search.replicates=1",
        f"search.storage={cluster.optuna_db}",
        "tracking=server",
        f"tracking.experiment={EXPERIMENT}",
        "tracking.log_model=false",
    ]
    on_slurm_ = run_cli(
        *smoke_args(tiny_mnist, tmp_path / "slurm", *search, "hydra.sweeper.n_trials=1", *on_slurm(cluster)),
        cwd=tmp_path,
        env=env,
    )
    assert on_slurm_.returncode == 0, on_slurm_.stdout[-3000:] + on_slurm_.stderr[-5000:]
    # The smoke search (two trials), after the first trial: it resumes the study, one trial more.
    on_ray = run_cli(
        *smoke_args(
            tiny_mnist,
            tmp_path / "ray",
            *search,
            "hydra.sweeper.n_trials=2",
            "hydra/launcher=ray_local",
            "hydra.launcher.ray.init.num_cpus=2",
        ),
        cwd=tmp_path,
        env=env,
    )
    assert on_ray.returncode == 0, on_ray.stdout[-3000:] + on_ray.stderr[-5000:]
    assert "1 trial(s) done, 1 to run" in on_ray.stdout + on_ray.stderr
    assert "from 2 runs" in on_ray.stdout, "the resumed sweep's report covers the whole study"

    login(monkeypatch, env)
    study = optuna.load_study(study_name=f"{EXPERIMENT}-mlp_optuna", storage=cluster.optuna_db)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    (slurm_sweep, slurm_runs), (ray_sweep, ray_runs) = sweeps(MlflowClient(team_server.url), EXPERIMENT)
    assert [r.data.tags[names.TAG_TRIAL] for r in slurm_runs + ray_runs] == ["0", "1"]
    assert all(r.info.status == "FINISHED" for r in [slurm_sweep, ray_sweep, *slurm_runs, *ray_runs])

    secrets = [ALICE_PASSWORD, ADMIN_PASSWORD, *cluster.database_passwords()]
    printed = on_slurm_.stdout + on_slurm_.stderr + on_ray.stdout + on_ray.stderr
    dump = cluster.run("pg_dump", cluster.optuna_db)
    assert f"{EXPERIMENT}-mlp_optuna" in dump and not [s for s in secrets if s in dump + printed]
    assert files_holding([tmp_path / "slurm", tmp_path / "ray", team_server.artifacts], secrets) == []
