"""``medlens audit``: explain a whole data set, score every case, find the model's strategies.

Every case gets its prediction, the maps of the chosen methods, deletion and insertion AUC, the
localisation numbers where masks exist and a map summary; cases are committed to OUT/audit.sqlite
as they finish, so running the same command again resumes a killed run. Then SpRAy clusters each
predicted class's maps into prediction strategies and flags candidate shortcuts. OUT gets
cases.csv, cases.parquet, clusters.csv and audit.html.

Engines: ``--engine local`` (default, in-process) or ``--engine ray [--address ADDR] [--workers N]``
(needs ``pip install 'medlens[ray]'``); both give identical results.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "audit", help="audit a whole data set: per-case numbers and model strategies (SpRAy)",
                       doc=__doc__, examples=[
                           "medlens audit --model m.pt --data lesions.npz --out audit/",
                           "medlens audit --model m.pt --data lesions.npz --leaderboard leaderboard/ --limit 500 --out audit/",
                           "medlens audit --model m.pt --data scans/ --methods gradcam --option gradcam.upsample=True --out audit/",
                           "medlens audit --model m.pt --data lesions.npz --engine ray --workers 2 --out audit/",
                       ])
    p.add_argument("--model", required=True, help="medlens model file (.pt)")
    p.add_argument("--data", required=True, help="npz data set, bundled name, or a folder of scans (.dcm, .nii, .npy)")
    p.add_argument("--split", default="test", help="split of an npz or bundled data set (default: test)")
    p.add_argument("--out", required=True, help="output folder (its audit.sqlite is resumed)")
    p.add_argument("--methods", default=None,
                   help="comma-separated methods (default: those --leaderboard trusts, else gradcam,integrated_gradients)")
    p.add_argument("--leaderboard", default=None, help="a `medlens evaluate` output folder or its summary.json")
    p.add_argument("--cluster-method", default="smoothgrad", help="method whose maps are clustered (default: smoothgrad)")
    p.add_argument("--metric-option", action="append", metavar="METRIC.NAME=VALUE",
                   help="metric option, repeatable (deletion_auc.steps=10)")
    p.add_argument("--cases-per-batch", type=int, default=16,
                   help="cases per unit of work: of computing, committing and retrying (default: 16)")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start Ray on this machine)")
    p.add_argument("--workers", type=int, default=None, help="Ray actors (default: one per CPU)")
    p.add_argument("--restart", action="store_true", help="discard the audit stored in OUT instead of resuming it")
    p.add_argument("--show-identifiers", action="store_true", help="name cases by file path in audit.html")
    add_flags(p, "limit", "option", "budget", "seed", "quiet")
    p.set_defaults(run=run)


def _trusted_methods(path: str | None) -> list[str] | None:
    import json
    from pathlib import Path

    from medlens.errors import FileFormatError

    if path is None:
        return None
    p = Path(path)
    p = p / "summary.json" if p.is_dir() else p
    try:
        summary = json.loads(p.read_text(encoding="utf-8"))
        ranking = list(summary["verdict"]["ranking"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FileFormatError(f"{path!r} is not a leaderboard summary (medlens evaluate's summary.json): {err}") from err
    return ranking or None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medlens.audit.cases import DEFAULT_METHODS, AuditSettings
    from medlens.audit.run import analyse, exemplar_maps, run_audit
    from medlens.audit.sources import SourceSpec
    from medlens.cli.common import options_per_method, options_per_metric
    from medlens.errors import MedlensError
    from medlens.models import load_model
    from medlens.report.audit import audit_report, flagged_sentences

    if args.cases_per_batch < 1:
        raise MedlensError(f"--cases-per-batch must be at least 1, got {args.cases_per_batch}")
    if args.memory_mb is not None:
        raise MedlensError("the audit fixes the engine's chunk size so that both engines give the same numbers: "
                           "use --batch-size instead of --memory-mb")
    if args.workers is not None and args.workers < 1:
        raise MedlensError(f"--workers must be at least 1, got {args.workers}")
    trusted = _trusted_methods(args.leaderboard)
    if args.methods:
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        source_of_methods = "chosen"
    elif trusted:
        methods = tuple(trusted)
        source_of_methods = "trusted by the leaderboard"
    else:
        methods = DEFAULT_METHODS
        source_of_methods = "default"
    settings = AuditSettings(
        methods=methods,
        cluster_method=args.cluster_method,
        method_options=options_per_method(args.option, methods + (args.cluster_method,)),
        metric_options=options_per_metric(args.metric_option),
        cases_per_batch=args.cases_per_batch,
        **({"batch_size": args.batch_size} if args.batch_size is not None else {}),
        seed=args.seed,
    )
    model, meta = load_model(args.model)
    shape = meta.get("input_shape")
    spec = SourceSpec(str(args.data), args.split, None if shape is None else tuple(shape))
    result = run_audit(model, spec, args.out, settings, meta=meta, engine=args.engine, address=args.address,
                       workers=args.workers, restart=args.restart, progress=not args.quiet, limit=args.limit)
    analysis = analyse(args.out)
    exemplars = exemplar_maps(model, spec, analysis)
    class_names = meta.get("class_names") or analysis.info.get("class_names") or []
    report = audit_report(
        analysis, exemplars, class_names=class_names, show_identifiers=args.show_identifiers,
        subtitle=f"model {Path(args.model).name}; data {Path(str(args.data)).name}/{args.split}; "
                 f"{len(analysis.results)} cases; methods ({source_of_methods}): {', '.join(settings.methods)}; "
                 f"maps clustered: {analysis.strategies.method}",
    )
    report.write(Path(args.out) / "audit.html")
    rate = f", {result.cases_per_second:.2f} cases/s" if result.n_new else ""
    print(f"audited {result.n_new} new case(s) of {result.n_cases} on the {result.engine} engine{rate}")
    for sentence in flagged_sentences(analysis.strategies, class_names):
        print(sentence)
    print(f"cases.csv, cases.parquet, clusters.csv, audit.html -> {args.out}")
    return 0
