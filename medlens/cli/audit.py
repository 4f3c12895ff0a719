"""``medlens audit``: explain a whole data set, score every case, find the model's strategies.

Every case gets its prediction, the maps of the chosen methods, deletion and insertion AUC, the
localisation numbers where masks exist and a map summary; cases are committed to OUT/audit.sqlite
as they finish, so running the same command again resumes a killed run. Then SpRAy clusters each
predicted class's maps into prediction strategies and flags candidate shortcuts. OUT gets
cases.csv, cases.parquet, clusters.csv and audit.html.

Scans (a file, a DICOM series folder or a folder of cases) are read exactly as ``medlens explain``
reads them: DICOM slices grouped by series, every case through the model's recipe (``--recipe``,
``--window``, ... for a model without one). Scans have no labels unless ``--labels`` gives a CSV
with columns case,label, and evidence masks only from its optional ``mask`` column (paths to masks
on each scan's grid, carried onto the model's grid like the scan); without masks the localisation
numbers are skipped (the command says so). A case that cannot be read is listed in OUT/unreadable.csv with its error,
and the others go on.

A text model (``medlens train --data notes.csv``) is audited on a notes file (``--text-column``,
``--label-column``): every note is explained for its predicted class by the token methods
(default integrated_gradients, grad_x_input; the first ranks the tokens) and the model's
attention, with deletion and insertion AUC on tokens; per predicted class, the tokens carrying
the notes' relevance are listed (tokens.csv), and the ``--top-tokens`` most relevant (and any
named by ``--tokens``) are deleted from the notes that contain them and compared with deleting as
many random other words of the same notes (two-sided Wilcoxon signed-rank, Holm-corrected): the
sentences say which tokens the predictions depend on. Notes are named case-0000... by row
(identifiers.csv maps them to the file's case ids) and no note text is written unless
``--show-identifiers``.

Engines: ``--engine local`` (default, in-process) or ``--engine ray [--address ADDR] [--workers N]``
(needs ``pip install 'medlens[ray]'``); both give identical results.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, add_out_folder, command_parser
    from medlens.cli.inputs import add_recipe_flags, add_text_flags

    p = command_parser(sub, "audit", help="audit a whole data set: per-case numbers and model strategies (SpRAy)",
                       doc=__doc__, examples=[
                           "medlens audit --model m.pt --data lesions.npz --out audit/",
                           "medlens audit --model m.pt --data lesions.npz --leaderboard leaderboard/ --limit 500 --out audit/",
                           "medlens audit --model m.pt --data scans/ --methods gradcam --option gradcam.upsample=True --out audit/",
                           "medlens audit --model ct.pt --data head_ct/ --labels labels.csv --window brain --out audit/",
                           "medlens audit --model m.pt --data lesions.npz --engine ray --workers 2 --out audit/",
                           "medlens audit --model notes.pt --data notes.csv --tokens xxxx --out notes_audit/",
                       ])
    p.add_argument("--model", required=True, help="medlens model file (.pt) or TorchScript file")
    p.add_argument("--data", required=True,
                   help="npz data set, bundled name, a scan file or a folder of scans (any format medlens explain "
                        "reads); for a text model, a notes file")
    p.add_argument("--labels", default=None, metavar="FILE", help="scans: CSV with columns case,label (a class index or name) and optionally mask (a path)")
    p.add_argument("--split", default="test", help="split of an npz or bundled data set (default: test)")
    add_out_folder(p, help="output folder (its audit.sqlite is resumed)")
    p.add_argument("--methods", default=None,
                   help="comma-separated methods (default: those --leaderboard trusts, else gradcam,integrated_gradients; "
                        "notes: integrated_gradients,grad_x_input)")
    p.add_argument("--leaderboard", default=None, help="a `medlens evaluate` output folder or its summary.json")
    p.add_argument("--cluster-method", default=None, help="method whose maps are clustered (default: smoothgrad; "
                                                            "not for notes)")
    p.add_argument("--metric-option", action="append", metavar="METRIC.NAME=VALUE",
                   help="metric option, repeatable (deletion_auc.steps=10)")
    p.add_argument("--cases-per-batch", type=int, default=16,
                   help="cases per unit of work: of computing, committing and retrying (default: 16)")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start Ray on this machine)")
    p.add_argument("--workers", type=int, default=None, help="Ray actors (default: one per CPU)")
    p.add_argument("--restart", action="store_true", help="discard the audit stored in OUT instead of resuming it")
    p.add_argument("--show-identifiers", action="store_true",
                   help="name scans by their file paths in every output (default: pseudonymous ids, the files "
                        "listed in identifiers.csv only) and draw exemplars whose DICOM header says their pixels "
                        "identify the patient (BurnedInAnnotation YES)")
    p.add_argument("--allow-outside", action="store_true",
                   help="let the labels file name masks outside the data folder (refused by default)")
    p.add_argument("--tokens", default=None, metavar="T1,T2",
                   help="notes: vocabulary entries tested in every class besides the most relevant (xxxx: the "
                        "de-identification placeholder)")
    p.add_argument("--top-tokens", type=int, default=10, metavar="N",
                   help="notes: the N most relevant tokens of each predicted class are tested (default: 10)")
    add_text_flags(p)
    add_recipe_flags(p)
    add_flags(p, "limit", "option", "budget", "seed", "quiet", "multi-label")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.audit import AuditRequest, audit_cohort
    from medlens.cli.common import parse_options
    from medlens.cli.inputs import recipe_options

    outcome = audit_cohort(AuditRequest(
        model=args.model, data=args.data, out=args.out, labels=args.labels, split=args.split,
        methods=tuple(m.strip() for m in (args.methods or "").split(",") if m.strip()),
        leaderboard=args.leaderboard, cluster_method=args.cluster_method,
        metric_options=parse_options(args.metric_option), options=parse_options(args.option),
        cases_per_batch=args.cases_per_batch, engine=args.engine, address=args.address, workers=args.workers,
        restart=args.restart, show_identifiers=args.show_identifiers, allow_outside=args.allow_outside, recipe=recipe_options(args), limit=args.limit,
        batch_size=args.batch_size, memory_mb=args.memory_mb, seed=args.seed, quiet=args.quiet, multi_label=args.multi_label,
        text_column=args.text_column, label_column=args.label_column,
        tokens=tuple(t.strip() for t in (args.tokens or "").split(",") if t.strip()), top_tokens=args.top_tokens,
    ))
    result, analysis = outcome.run, outcome.analysis
    rate = f", {result.cases_per_second:.2f} cases/s" if result.n_new else ""
    print(f"audited {result.n_new} new case(s) of {result.n_cases} on the {result.engine} engine{rate}")
    for sentence in outcome.flagged:
        print(sentence)
    for note in outcome.notes:
        print(f"note: {note}")
    from medlens.cli import SOME_FAILED, list_failures

    if result.failures:
        print(f"{len(result.failures)} case(s) could not be read and were left out; their errors: unreadable.csv")
        list_failures([(failure.case, failure.error) for failure in result.failures])
    if outcome.files:
        print(f"{', '.join(outcome.files)} -> {args.out}")
        return SOME_FAILED if result.failures else 0
    files = "cases.csv, cases.parquet, clusters.csv, familiarity.csv, audit.html" + (", unreadable.csv" if analysis.failures else "")
    print(f"{files}{', identifiers.csv' if outcome.identifiers else ''} -> {args.out}")
    return SOME_FAILED if result.failures else 0
