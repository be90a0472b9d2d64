"""The README and the docs name only files that exist: every relative link, and every
``docs/…``, ``conf/…``, ``mlp_sweep/…``, ``scripts/…`` or ``tests/…`` path they mention. docs/tracking.md
lists exactly what a real run logs, and docs/faults.md exactly what the config hash leaves out and which
modules the code fingerprint reads, found by changing them."""

import re
import shutil
import sys

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from helpers import ROOT, blobs, make_cfg, smoke_cfg, write_dataset

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")  # [text](target) or [text](target#anchor)
PATH = re.compile(r"(?<![\w/.-])((?:docs|conf|mlp_sweep|scripts|tests|benchmarks|hydra_plugins)/[\w./-]*\w)")


def named_files(page) -> list[tuple[str, object]]:
    text = page.read_text()
    links = [(t, page.parent / t) for t in LINK.findall(text) if "://" not in t and not t.startswith("mailto:")]
    paths = [(p, ROOT / p) for p in PATH.findall(text) if "<" not in p and "*" not in p]
    return links + paths


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_file_a_page_names_exists(page):
    missing = [name for name, path in named_files(page) if not path.exists()]
    assert not missing, f"{page.name} names files that do not exist: {missing}"


def test_the_readme_stays_short_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"


# --- docs/tracking.md and docs/faults.md against what the code does -------------------------------------------


def table_row(page: str, kind: str) -> list[str]:
    """The backticked names in the row of the page's table whose first cell starts with ``kind``."""
    (row,) = [line for line in (ROOT / page).read_text().splitlines() if line.startswith(f"| {kind}")]
    return re.findall(r"`([^`]+)`", row.split("|")[2])


def as_pattern(name: str) -> re.Pattern:
    """``best_<monitor>`` matches best_val_loss: a placeholder in angle brackets stands for a word."""
    parts = re.split(r"(<\w+>)", name)
    return re.compile("".join(r"\w+" if part.startswith("<") else re.escape(part) for part in parts))


def undocumented_and_unlogged(documented: list[str], logged: set[str]) -> tuple[set[str], set[str]]:
    patterns = [as_pattern(n) for n in documented]
    missing = {k for k in logged if not any(p.fullmatch(k) for p in patterns)}
    unlogged = {n for n, p in zip(documented, patterns, strict=True) if not any(p.fullmatch(k) for k in logged)}
    return missing, unlogged


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """A real run of two epochs on a small generated dataset, as the command line would train it."""
    from mlp_sweep.core.run import train

    tmp = tmp_path_factory.mktemp("docs_run")
    folder = write_dataset(tmp / "d", blobs((6,), 3, n_train=300, n_test=30), fmt="npz")
    store = f"sqlite:///{tmp / 'mlflow.db'}"
    own = ("dataset.source=null", "dataset.train_size=null", "dataset.test_size=null", "dataset.val_size=100")
    cfg = smoke_cfg(folder, store, *own, "trainer.epochs=2", "tracking.log_model=true")
    train(cfg, progress="none")
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name(cfg.tracking.experiment).experiment_id])
    steps = {k: [m.step for m in client.get_metric_history(run.info.run_id, k)] for k in run.data.metrics}
    return run, steps, {a.path for a in client.list_artifacts(run.info.run_id)}


def test_tracking_md_lists_the_params_a_run_logs_beyond_its_config(logged_run):
    run, _, _ = logged_run
    documented = table_row("docs/tracking.md", "params")
    beyond_config = {k for k in run.data.params if "." not in k}  # config keys are dotted; the rest are not
    missing, unlogged = undocumented_and_unlogged(documented, set(run.data.params))
    assert not missing & beyond_config, f"docs/tracking.md does not list the params {missing & beyond_config}"
    assert not unlogged, f"docs/tracking.md lists params a run does not log: {unlogged}"


@pytest.mark.parametrize("kind, per_epoch", [("per-epoch metrics", True), ("final metrics", False)])
def test_tracking_md_lists_exactly_the_metrics_a_run_logs(logged_run, kind, per_epoch):
    run, steps, _ = logged_run
    logged = {k for k, s in steps.items() if (s == [1, 2]) == per_epoch}  # two epochs: steps 1 and 2, or once
    documented = table_row("docs/tracking.md", kind)
    if not per_epoch:  # logged only where early stopping ended a run before its epochs: this run did not stop
        assert "stopped_epoch" in documented
        documented.remove("stopped_epoch")
    missing, unlogged = undocumented_and_unlogged(documented, logged)
    assert not missing, f"docs/tracking.md's {kind} miss {missing}"
    assert not unlogged, f"docs/tracking.md's {kind} name what a run does not log: {unlogged}"


def test_tracking_md_lists_exactly_the_tags_and_artifacts_a_run_logs(logged_run):
    run, _, artifacts = logged_run
    tags = {k for k in run.data.tags if not k.startswith("mlflow.") or k == "mlflow.runName"}  # MLflow's own aside
    missing, unlogged = undocumented_and_unlogged(table_row("docs/tracking.md", "tags"), tags)
    assert not missing and not unlogged, f"tags: undocumented {missing}, documented but not logged {unlogged}"
    files = {n for n in table_row("docs/tracking.md", "artifacts") if re.fullmatch(r"[\w.]+\.\w+", n)}
    assert files == artifacts


def faults_paragraph(start: str) -> str:
    text = (ROOT / "docs/faults.md").read_text()
    return text[text.index(start) :].split("\n\n")[0]


def changed(value):
    """Another value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value * 2 + 1
    if isinstance(value, list):
        return [*value, value[-1]] if value else [1]
    return f"{value}_other" if value is not None else 1


def test_faults_md_names_exactly_the_keys_the_config_hash_leaves_out():
    from mlp_sweep import dotted
    from mlp_sweep.store.identity import config_hash

    excluded = re.findall(r"`([\w.*]+)`", faults_paragraph("**Not in the config hash:**"))
    plain = OmegaConf.to_container(make_cfg(), resolve=True)
    leaves = dict(dotted.leaves(plain))
    base = config_hash(OmegaConf.create(plain))

    def hash_with(key):
        other = OmegaConf.create(plain)
        OmegaConf.update(other, key, changed(leaves[key]), merge=False)
        return config_hash(other)

    def is_listed(key):
        return any(key == x or (x.endswith(".*") and key.startswith(x[:-1])) for x in excluded)

    for x in excluded:  # each names keys of the config, and changing them leaves the hash as it is
        keys = [k for k in leaves if is_listed(k) and (k == x or k.startswith(x[:-1]))]
        assert keys, f"docs/faults.md leaves out {x}, which the config does not hold"
        assert all(hash_with(k) == base for k in keys), f"docs/faults.md leaves out {x}, but it changes the hash"
    counted = [k for k in leaves if not is_listed(k)]
    assert [k for k in counted if hash_with(k) == base] == [], "keys the hash leaves out that docs/faults.md does not"


def test_faults_md_names_exactly_the_modules_the_code_fingerprint_reads(tmp_path, monkeypatch):
    from mlp_sweep.store import identity

    documented = set(re.findall(r"`mlp_sweep/([\w/]+\.py)`", faults_paragraph("**The code fingerprint**")))
    package = tmp_path / "mlp_sweep"
    shutil.copytree(identity.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(identity, "PACKAGE_DIR", package)
    versions = {"keras_version": "3"}
    base = identity.code_fingerprint(versions)
    read = set()
    for module in sorted(package.rglob("*.py")):
        source = module.read_text()
        module.write_text(source + "\n_changed = 1\n")  # a statement: any fingerprinted module's change counts
        identity._fingerprint.cache_clear()
        if identity.code_fingerprint(versions) != base:
            read.add(module.relative_to(package).as_posix())
        module.write_text(source)
    identity._fingerprint.cache_clear()
    assert read == documented


def test_the_docs_test_fails_on_a_metric_removed_from_tracking_md(logged_run, tmp_path, monkeypatch):
    run, steps, _ = logged_run
    page = tmp_path / "docs" / "tracking.md"
    page.parent.mkdir()
    page.write_text((ROOT / "docs/tracking.md").read_text().replace("`predict_ms_per_1k` ", ""))
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="predict_ms_per_1k"):
        test_tracking_md_lists_exactly_the_metrics_a_run_logs(logged_run, "final metrics", False)
