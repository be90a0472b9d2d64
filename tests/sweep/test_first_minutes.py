"""A first sweep in a fresh folder, as the README's quick start runs it: no MLflow start-up lines,
a time left on every job line, and a closing note with the links that open the sweep in the UI."""

import re

import pytest

from helpers import children, parents, run_cli, sweep_args

JOB_LINE = re.compile(r"\[(\d+)/(\d+)\] (\S+)  elapsed \d+:\d\d  ETA (\?|\d+:\d\d)")


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher, models",
    [
        ((), "mlp2,mlp3"),  # the basic launcher: jobs in the sweep's process, which times them
        (("hydra/launcher=parallel", "hydra.launcher.n_jobs=2"), "mlp2,mlp3,mlp5"),  # joblib: the store is watched
    ],
    ids=["basic", "parallel"],
)
def test_a_first_sweep_is_quiet_timed_and_ends_with_its_links(tiny_mnist, tmp_path, launcher, models):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(
        *sweep_args(tmp_path, tiny_mnist, f"model={models}", "tracking.log_model=false", *launcher), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "INFO mlflow" not in output and "alembic" not in output and "Context impl" not in output
    assert f"created MLflow store {store}" in output

    # One line per job, from the sweep's process: the time left is known once a job has ended.
    lines = [JOB_LINE.fullmatch(line) for line in result.stdout.splitlines() if re.match(r"\[\d+/", line)]
    jobs = len(models.split(","))
    assert all(lines) and len(lines) == jobs, result.stdout
    assert [int(m[1]) for m in lines] == list(range(1, jobs + 1)) and {m[2] for m in lines} == {str(jobs)}
    assert sorted(m[3] for m in lines) == sorted(f"{m}-none-s0" for m in models.split(","))
    assert lines[0][4] == "?" and lines[-1][4] != "?"

    (parent,) = parents(store)
    runs = f"http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}/runs"
    note = result.stdout.rstrip().splitlines()[-4:]
    assert note[0] == f"MLflow UI: mlflow ui --backend-store-uri {store}  (from any folder), then open"
    assert note[1] == f"  the sweep's runs  {runs}?workflowType=machine_learning"
    assert note[2] == f"  its parent run    {runs}/{parent.info.run_id}?workflowType=machine_learning"
    assert re.fullmatch(rf"Wall time: \d+:\d\d for {jobs} jobs\.", note[3])
    assert f"Report: {tmp_path / 'multirun' / 'report'}/" in result.stdout

    # The parent is attributed like its children: user, source, commit.
    child = children(store)[0]
    shared = [
        "mlflow.user",
        "mlflow.source.name",
        "mlflow.source.type",
        "mlflow.source.git.commit",
        "mlp_sweep.git_commit",
    ]
    assert {k: parent.data.tags.get(k) for k in shared} == {k: child.data.tags.get(k) for k in shared}
    assert parent.data.tags["mlflow.user"]
