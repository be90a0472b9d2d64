"""Compare a sweep's configs side by side, from what MLflow holds.

    mlp-sweep report                                   # the latest sweep in the store
    mlp-sweep report --sweep <parent run id> --out reports/mine
    mlp-sweep report --experiment mlp_sweep --tracking-uri http://localhost:5000

Prints the table, writes it as Markdown and CSV with its figures (validation
curves, test accuracy, and per cost the accuracy-cost front) into the output
folder, and logs the same files under ``report/`` on the sweep's parent run,
by :func:`mlp_sweep.reporting.report.make_report`. This module is the
``mlp-sweep report`` command line.
"""

import argparse
import sys

from mlp_sweep import choices, validation
from mlp_sweep.choices import COST_AXES, DEFAULT_COSTS
from mlp_sweep.errors import MlpSweepError
from mlp_sweep.reporting import frame
from mlp_sweep.reporting.report import make_report


def main(argv: list[str] | None = None) -> int:
    """The command line; user errors print one ``error:`` line and return 1."""
    parser = argparse.ArgumentParser(prog="mlp-sweep report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", help="parent run id or name of the sweep (default: the latest sweep)")
    parser.add_argument("--experiment", help="MLflow experiment to look in (default: all)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    parser.add_argument("--out", help="folder for the files (default: reports/<sweep run name>)")
    parser.add_argument(
        "--costs",
        default=",".join(DEFAULT_COSTS),
        help="what the accuracy-cost front weighs against, comma-separated: n_params, epoch_time_s, "
        "predict_ms_per_1k, train_time_s (default: %(default)s)",
    )
    parser.add_argument(
        "--at",
        choices=frame.AT,
        default="final",
        help="compare each run at its final epoch, or at its best validation epoch (default: %(default)s)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        help="margin of equivalence in points of validation accuracy: each config's verdict is best, worse, "
        "equivalent ±margin or undecided, with the seeds a decision needs (default: none)",
    )
    parser.add_argument(
        "--register",
        metavar="NAME",
        help="register the chosen config's model in MLflow's Model Registry under NAME, --alias pointing at it "
        "(load or serve it as models:/NAME@ALIAS; default: nothing is registered)",
    )
    parser.add_argument(
        "--alias", default="champion", help="the alias of the registered version (default: %(default)s)"
    )
    parser.add_argument(
        "--choose",
        choices=choices.REPORT_CHOOSE,
        default="best",
        help="the config chosen (and registered): best on validation, or cheapest by the first of --costs among those "
        "not shown worse than the best (with --margin, those shown equivalent) (default: %(default)s)",
    )
    parser.add_argument(
        "--holm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Holm-adjust the p-values of the comparisons with the best (default: on)",
    )
    args = parser.parse_args(argv)
    costs = [c.strip() for c in args.costs.split(",") if c.strip()]
    unknown = [c for c in costs if c not in COST_AXES]
    if unknown or not costs:
        print(f"error: --costs {args.costs}: give one or more of {', '.join(COST_AXES)}", file=sys.stderr)
        return 1
    if args.margin is not None and not validation.is_margin(args.margin):
        print(f"error: --margin {args.margin}: give a finite number of points > 0, e.g. --margin 0.3", file=sys.stderr)
        return 1
    problem = register_problem(args.register, args.alias)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        report = make_report(
            args.sweep,
            args.experiment,
            args.tracking_uri,
            args.out,
            args.holm,
            costs=costs,
            at=args.at,
            margin=args.margin,
            register=args.register,
            alias=args.alias,
            choose=args.choose,
        )
    except MlpSweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(report.text())
    return 0


def register_problem(name: str | None, alias: str) -> str | None:
    """What MLflow would refuse in --register and --alias, as one line, or None."""
    if name is not None and (why := validation.model_name_problem(name)):
        return f"--register {name!r} {why}: give a registered model name such as --register mnist_mlp"
    if why := validation.alias_problem(alias):
        return f"--alias {alias!r} {why}: e.g. --alias champion"
    return None


if __name__ == "__main__":
    sys.exit(main())
