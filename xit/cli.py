"""The `xit` command line.

Exit codes: 0 ok; 2 bad input (one line naming the problem, nothing started or written);
1 failure during work; 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from xit import __version__, git_revision, ui
from xit.cluster import DEFAULT_NAMESPACE, DEFAULT_TEMPLATE
from xit.errors import WorkError, XitError

if TYPE_CHECKING:
    from xit.plan import Plan, Stage

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Intermediate-task training for zero-shot cross-lingual transfer.")
stage_app = typer.Typer(no_args_is_help=True, help="Run a single stage of a plan (what cluster pods run).")
app.add_typer(stage_app, name="stage")

SpecArg = Annotated[Path, typer.Argument(help="experiment spec (YAML)", show_default=False)]
StoreOpt = Annotated[str, typer.Option("--store", help="store: a local directory or s3://bucket/prefix")]


def _version(value: bool) -> None:
    if value:
        ui.out.print(f"xit {__version__} (git {git_revision()})")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    pass


@app.command()
def validate(spec: SpecArg) -> None:
    """Check a spec: fields, task names, languages, local data files, model path."""
    from xit.spec import load_specs

    for s in load_specs(spec):  # a multi-Workflow pipeline: one line per spec
        ui.out.print(f"ok: {spec}: sweep {s.name!r}, {len(s.intermediate)} intermediate configuration(s) × "
                     f"{len(s.targets)} target(s) × {len(s.seeds)} seed(s), model {', '.join(s.model_list())}")


@app.command()
def plan(spec: SpecArg,
         as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
         cost: Annotated[bool, typer.Option("--cost", help="estimate GPU-hours per stage kind and what sharing "
                                                           "stages saves")] = False,
         peak_tflops: Annotated[float | None, typer.Option(
             "--peak-tflops", help="for --cost: the GPU's peak bf16 TFLOP/s (default: an A100's 312)")] = None,
         mfu: Annotated[float | None, typer.Option(
             "--mfu", help="for --cost: model FLOPs utilisation, 0-1 (default 0.35)")] = None,
         measured: Annotated[Path | None, typer.Option(
             "--measured", help="for --cost: a `bench/gpu_mfu.py --json` result: its device peak and MFU")] = None,
         ) -> None:
    """Show the stages a spec needs (a tree), or the plan JSON that `stage run` reads."""
    from xit.plan import build_plan
    from xit.spec import load_spec, load_specs

    device = _cost_device(peak_tflops, mfu, measured) if cost else None
    if as_json:  # what `stage run` reads: one plan, so one spec
        sys.stdout.write(build_plan(load_spec(spec)).to_json() + "\n")
        return
    for p in [build_plan(s) for s in load_specs(spec)]:  # a multi-Workflow pipeline: each spec's plan in turn
        if device is not None:
            ui.out.print(_cost_table(p, device))
        elif ui.out.is_terminal and not ui.out.no_color and len(p.stages) <= STYLED_TREE_MAX:
            ui.out.print(_tree(p, styled=True), soft_wrap=True, highlight=False)
        else:
            sys.stdout.write(_tree(p, styled=False) + "\n")


def _cost_device(peak_tflops: float | None, mfu: float | None, measured: Path | None) -> Any:
    from xit.cost import DEFAULT_MFU, DEFAULT_PEAK_TFLOPS, Device

    if measured is not None and (peak_tflops is not None or mfu is not None):
        raise XitError("--measured gives the peak and the MFU: leave out --peak-tflops and --mfu")
    if measured is not None:
        return Device.measured(measured)
    if peak_tflops is not None and not peak_tflops > 0:
        raise XitError(f"--peak-tflops must be above 0, not {peak_tflops}")
    if mfu is not None and not 0 < mfu <= 1:
        raise XitError(f"--mfu must be in (0, 1], not {mfu}")
    name = "A100 (assumed)" if peak_tflops is None else f"{peak_tflops:g} TFLOP/s peak"
    return Device(peak_tflops or DEFAULT_PEAK_TFLOPS, mfu or DEFAULT_MFU, name)


def _cost_table(p: Plan, device: Any) -> Table:
    from xit.cost import estimate, unshared_hours

    est = estimate(p, device)
    table = Table(title=f"sweep {p.name}: estimated GPU-hours on {device.name}, {100 * device.mfu:.0f} % MFU, "
                        "max_length tokens per example (an upper bound)")
    for col in ("stage kind", "stages", "GPU-hours", "not estimated"):
        table.add_column(col, justify="left" if col == "stage kind" else "right")
    kinds: dict[str, list[str]] = {}
    for s in p.stages:
        kinds.setdefault(s.kind, []).append(s.key)
    for kind, keys in kinds.items():
        gone = [k for k in keys if k in est.missing]
        table.add_row(kind, str(len(keys)), f"{est.total(keys):,.1f}", str(len(gone)) if gone else "")
    shared, alone = est.total(), unshared_hours(p, est)
    table.add_row("[bold]sweep[/]", str(len(p.stages)), f"[bold]{shared:,.1f}[/]", str(len(est.missing) or ""))
    saving = f"{alone - shared:,.1f} GPU-hours ({100 * (alone - shared) / alone:.0f} %)" if alone else "nothing"
    table.caption = (f"without stage sharing (each configuration × target × seed on its own): {alone:,.1f} "
                     f"GPU-hours; sharing saves {saving}")
    unknown = sorted(set(est.missing.values()))
    if unknown:
        table.caption += ("\nnot estimated (no published data size or model shape): " + ", ".join(unknown))
    return table


def _recipe(s: Stage) -> str:
    """The recipe a stage got, and what it trains with (the first task's settings for a multi-task one)."""
    from xit.recipes import describe

    if not s.recipe:
        return ""
    hp = s.params["tasks"][0]["hp"] if s.params.get("tasks") else s.params.get("hp")
    what = describe(hp) if s.kind in ("intermediate", "target") and hp else ""
    if s.kind == "retrieval" and "retrieval" in s.params:
        what = f"len {s.params['retrieval']['max_length']}"
    return f"[{s.recipe}{': ' + what if what else ''}]"


def _estimate_line(p: Plan) -> str:
    """`, ~N GPU-hours` on the default device of `--cost` (for the stages it can estimate), or nothing."""
    from xit.cost import Device, estimate

    est = estimate(p, Device())
    if not est.hours or not est.total():
        return ""
    part = f" for {len(est.hours)} of them" if est.missing else ""
    return f", ~{est.total():,.1f} GPU-hours{part} (--cost: how)"


# Above this many stages the tree prints without colours: rich lays out styled text at ~0.3 ms a line.
STYLED_TREE_MAX = 2000


def _tree(p: Plan, styled: bool) -> str:
    """The plan as a tree: one line per stage under the stage it starts from, drawn by hand (rich's `Tree`
    renders every node on its own: seconds for a 10,000-stage sweep). `styled`: console markup, else plain."""
    def st(text: str, style: str) -> str:
        return f"[{style}]{escape(text)}[/]" if styled else text

    def plain(text: str) -> str:
        return escape(text) if styled else text

    children: dict[str, list] = {}
    for s in p.stages:
        for k in s.inputs[:1]:
            children.setdefault(k, []).append(s)
    lines = [f"{st(f'sweep {p.name}', 'bold')} {st(f'{p.sweep_id}, {len(p.stages)} stages{_estimate_line(p)}', 'dim')}"]

    def node(s: Stage) -> str:
        recipe = _recipe(s)
        return (f"{st(s.kind, 'cyan')} {plain(s.label.split(' ', 1)[-1])} {st(s.key, 'dim')}"
                f"{' ' + st(recipe, 'magenta') if recipe else ''}")

    def below(s: Stage) -> list:
        return [c for c in children.get(s.key, []) if c.kind != "report"]

    def add(prefix: str, last: bool, line: str, under: list) -> None:
        lines.append(f"{prefix}{'└── ' if last else '├── '}{line}")
        inner = prefix + ("    " if last else "│   ")
        for i, c in enumerate(under):
            add(inner, i == len(under) - 1, node(c), below(c))

    top = [(node(s), below(s)) for s in p.stages if not s.inputs]
    top += [(f"{st('report', 'cyan')} {st(f'{s.key} ← {len(s.inputs)} stages', 'dim')}", [])
            for s in p.by_kind("report")]
    # Target stages several targets share (XQuAD and MLQA on one SQuAD model): the trainings that saves.
    scored = [len([c for c in children.get(s.key, []) if c.kind == "evaluate"]) for s in p.by_kind("target")]
    if any(n > 1 for n in scored):
        top.append((st(f"{sum(n > 1 for n in scored)} target stage(s) serve several targets: "
                       f"{sum(n - 1 for n in scored if n > 1)} fewer trainings", "dim"), []))
    for i, (line, under) in enumerate(top):
        add("", i == len(top) - 1, line, under)
    return "\n".join(lines)


@app.command()
def run(
    spec: SpecArg,
    store: StoreOpt = "./xit-runs",
    out: Annotated[Path | None, typer.Option("--out", help="report directory [default: reports/<name>]")] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Run a whole sweep locally: plan, every stage in order (committed ones skipped), report."""
    from xit.inputs import check_pushgateway_env
    from xit.spec import load_spec
    from xit.store import open_store
    from xit.store.local import check_writable_dir

    s = load_spec(spec)  # the spec, --out and --store are checked before anything is imported, started or written
    check_pushgateway_env()
    dest = out or Path("reports") / s.name
    check_writable_dir(dest, f"--out {dest}")
    st = open_store(store)
    from xit.runner import run_sweep

    summary = run_sweep(s, st, dest, show_progress=progress)
    ui.console.print(f"{summary.count('done')} stage(s) run, {summary.count('skipped')} skipped")


@stage_app.command("plan")
def stage_plan(
    spec: SpecArg,
    store: StoreOpt = "./xit-runs",
    outputs: Annotated[Path, typer.Option("--outputs", help="directory for the output parameters "
                                          "(sweep, base, branches, report, stages, totals): one file each")]
    = Path("outputs"),
) -> None:
    """The plan step of a cluster sweep: save the plan in the store, write the keys the workflow fans out over."""
    from xit.argo import write_outputs
    from xit.plan import build_plan
    from xit.runner import save_sweep
    from xit.spec import load_spec
    from xit.store import open_store
    from xit.store.local import check_writable_dir

    s = load_spec(spec)
    p = build_plan(s)
    check_writable_dir(outputs, f"--outputs {outputs}")  # before anything is written to the store
    st = open_store(store)
    prefix = save_sweep(st, s, p)
    values = write_outputs(p, outputs)
    ui.out.print(f"sweep {values['sweep']}: {values['stages']} stages in "
                 f"{len(json.loads(values['branches']))} branch(es); plan at {st.url}/{prefix}/plan.json")


@stage_app.command("run")
def stage_run(
    key: Annotated[str, typer.Option("--key", help="the stage's key")],
    plan_path: Annotated[Path | None, typer.Option("--plan", help="plan JSON (from `xit plan --json`)")] = None,
    sweep: Annotated[str | None, typer.Option("--sweep", help="<name>/<sweep_id>: read the plan the plan step "
                                              "saved in the store")] = None,
    store: StoreOpt = "./xit-runs",
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    with_scorers: Annotated[bool, typer.Option("--scorers", help="target stages: then run the stages that score "
                                               "it (its evaluate or retrieval stage, and a shared target's further "
                                               "evaluate stages)")] = False,
    outputs: Annotated[Path | None, typer.Option("--outputs", help="with --scorers: write their keys (file "
                                                 "`scored`) here")] = None,
    nproc: Annotated[int | None, typer.Option("--nproc", help="training stages: processes to train with, one "
                                              "per GPU (default: $XIT_NPROC, else the visible GPUs)",
                                              show_default=False)] = None,
) -> None:
    """Run exactly one stage (with --scorers, a target and the stages that score it): read inputs from the
    store, commit outputs; skip what is committed.

    A training stage (intermediate with tasks, target) on a machine with N GPUs trains as N processes through
    torch.distributed.run, data parallel (rank 0 commits); the stages that score it run on one device."""
    from xit import ranks
    from xit.argo import scorer_outputs, scorers, write_outputs
    from xit.inputs import check_pushgateway_env
    from xit.store import open_store

    check_pushgateway_env()
    if outputs is not None and not with_scorers:
        raise XitError("--outputs: only with --scorers (a target pod writes the keys it scored)")
    st = open_store(store)
    p = _plan_from(plan_path, sweep, st)
    p.stage(key)  # an unknown key is bad input, named before the stage machinery (and torch) is loaded
    keys = [key, *scorers(p, key)] if with_scorers else [key]  # bad input fails before any work
    if outputs is not None:
        from xit.store.local import check_writable_dir

        check_writable_dir(outputs, f"--outputs {outputs}")
    # GPUs are counted (torch imported) only where a stage here trains: evaluate, retrieval and report pods start
    # without it; a bad --nproc or $XIT_NPROC is refused for every kind.
    trains = any(ranks.stage_trains(p.stage(k).kind, p.stage(k).params) for k in keys)
    asked = nproc is not None or bool(os.environ.get(ranks.ENV_NPROC, "").strip())
    n = ranks.launch_count(nproc) if ranks.world() == 1 and (trains or asked) else 1
    from xit.stage import is_committed, run_stage

    for k in keys:
        stage = p.stage(k)
        if n > 1 and ranks.stage_trains(stage.kind, stage.params) and not is_committed(st, k):
            args = ["stage", "run", "--key", k, "--store", store, "--progress" if progress else "--no-progress"]
            args += ["--plan", str(plan_path)] if plan_path is not None else ["--sweep", str(sweep)]
            ui.console.print(f"stage {k}: training with {n} processes (torch.distributed.run)", highlight=False)
            import subprocess

            code = subprocess.run(ranks.launch_command(n, args)).returncode  # rank 0 prints what it did
            if code:
                raise typer.Exit(code)
            continue
        with ui.progress(progress and ranks.is_main()) as bars:
            status = run_stage(p, k, st, bars)
        if ranks.is_main():  # the other ranks of a training stage say nothing
            ui.out.print(f"{status}: {stage.label} ({k})")
    if outputs is not None:
        write_outputs(p, outputs, scorer_outputs(keys[1:]))


@stage_app.command("branch")
def stage_branch(
    sweep: Annotated[str, typer.Option("--sweep", help="<name>/<sweep_id>, as the plan step wrote it")],
    index: Annotated[int, typer.Option("--index", help="the branch's index in the plan step's `branches`")],
    store: StoreOpt = "./xit-runs",
    outputs: Annotated[Path, typer.Option("--outputs", help="directory for the output parameters "
                                          "(targets, retrieval): one file each")]
    = Path("outputs"),
) -> None:
    """A cluster branch's lookup: the target and retrieval stage keys of branch INDEX, one file each."""
    from xit.argo import branch_outputs, load_sweep_plan, write_outputs
    from xit.store import open_store

    p = load_sweep_plan(open_store(store), sweep)
    values = write_outputs(p, outputs, branch_outputs(p, index))
    targets = len(json.loads(values["targets"]))
    ui.out.print(f"branch {index} of {sweep}: {targets} target(s), "
                 f"{len(json.loads(values['retrieval']))} retrieval stage(s) on its encoder")


@app.command()
def notify(
    workflow: Annotated[str, typer.Option("--workflow", help="the workflow's name ({{workflow.name}})")],
    status: Annotated[str, typer.Option("--status", help="its status ({{workflow.status}})")],
    namespace: Annotated[str, typer.Option("--namespace", help="its namespace")] = "",
    failures: Annotated[str, typer.Option("--failures", help="Argo's {{workflow.failures}} JSON")] = "",
) -> None:
    """Post a finished sweep's outcome to the webhook in $XIT_WEBHOOK_URL (the chart's onExit hook)."""
    from xit.notify import send

    body = send(workflow, namespace, status, failures)
    ui.out.print(f"notified: {workflow} {status} ({len(body['failures'])} failed node(s))")


def _plan_from(plan_path: Path | None, sweep: str | None, store: object) -> Plan:
    from xit.argo import load_sweep_plan
    from xit.plan import Plan

    if (plan_path is None) == (sweep is None):
        raise XitError("give exactly one of --plan FILE or --sweep NAME/ID")
    return Plan.load(plan_path) if plan_path is not None else load_sweep_plan(store, sweep)


@app.command()
def report(
    source: Annotated[Path | None, typer.Argument(help="experiment spec (YAML) or plan (JSON)",
                                                  show_default=False)] = None,
    store: StoreOpt = "./xit-runs",
    out: Annotated[Path | None, typer.Option("--out", help="report directory [default: reports/<name>]")] = None,
    sweep: Annotated[str | None, typer.Option("--sweep", help="<name>/<sweep_id>: the plan saved in the store; "
                                              "without --out the report goes to sweeps/<name>/<id>/report/")] = None,
) -> None:
    """Write the report of a sweep whose stages are in the store (and print its table)."""
    from xit.plan import build_plan
    from xit.spec import load_spec
    from xit.stage import run_stage
    from xit.stages.report import export_report
    from xit.store import open_store
    from xit.store.local import check_writable_dir

    if out is not None:
        check_writable_dir(out, f"--out {out}")
    st = open_store(store)
    if source is not None and source.suffix != ".json":
        if sweep is not None:
            raise XitError("give a spec or --sweep NAME/ID, not both")
        p = build_plan(load_spec(source))
    else:
        p = _plan_from(source, sweep, st)
    handoff: dict[str, Any] = {}  # the report's tables when its stage runs now: export_report aggregates no more
    run_stage(p, p.by_kind("report")[0].key, st, handoff=handoff)
    if sweep is not None and out is None:
        from xit.telemetry import delete_sweep_groups

        export_report(p, st, publish=True, handoff=handoff)
        # The sweep is over: its stages' Pushgateway groups go, so the gateway's series stay bounded.
        delete_sweep_groups(p.name, [(s.key, s.kind) for s in p.stages])
        return
    export_report(p, st, out or Path("reports") / p.name, handoff=handoff)


@app.command()
def tasks(
    family: Annotated[str | None, typer.Option(help="only this family (xtreme, xtreme-r, english, native, "
                                                    "demo)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """List the registered tasks: name, format, languages, metric, source."""
    from xit.tasks.registry import all_tasks

    families = sorted({t.family for t in all_tasks()})
    if family is not None and family not in families:
        raise XitError(f"--family {family!r}: no such family; known: {', '.join(families)}")
    ts = [t for t in all_tasks() if family is None or t.family == family]
    if as_json:
        rows = [{"name": t.name, "family": t.family, "format": t.format, "languages": list(t.languages),
                 "metric": t.metric, "roles": sorted(t.roles), "source": t.source,
                 "labels": list(t.labels), "labels_note": t.labels_note or None, "local_only": t.local_only,
                 "intermediate_languages": list(t.intermediate_languages()),
                 "slices": {n: {"kind": sl.kind, "values": list(sl.values), "note": sl.note}
                            for n, sl in t.slices.items()},
                 "fine_tuning": t.finetune_source or None} for t in ts]
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    table = Table(title="xit tasks")
    for col in ("task", "family", "format", "roles", "languages", "metric", "source"):
        table.add_column(col, overflow="fold")
    for t in ts:
        langs = f"{len(t.languages)}: " + " ".join(t.languages)
        table.add_row(t.name, t.family, t.format, "/".join(sorted(t.roles)), langs, t.metric, t.source)
    ui.out.print(table)


@app.command()
def languages(as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False) -> None:
    """List the per-language metadata the report's typology section groups by, with each value's source."""
    from xit.typology import ATTRIBUTES, LANGUAGES

    if as_json:
        rows = [{"language": m.code, "name": m.name, "wals": m.wals, "genus": m.genus,
                 "wals_values": list(m.wals_values), **{a: m.attribute(a) for a in ATTRIBUTES},
                 "sources": {a: m.source(a) for a in ATTRIBUTES}} for m in LANGUAGES.values()]
        sys.stdout.write(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
        return
    table = Table(title="xit languages (WALS v2020.4, CLDR)")
    for col in ("language", "name", "family", "script", "morphology", "affixation", "morphology source"):
        table.add_column(col, overflow="fold")
    for m in LANGUAGES.values():
        table.add_row(m.code, m.name, m.family, m.script, m.morphology, m.affixation, m.morphology_source)
    ui.out.print(table)


NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Kubernetes namespace of the workflow")]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context (default: the current one)")]
IntervalOpt = Annotated[float, typer.Option("--interval", min=0.1, help="seconds between polls with --follow")]


@app.command()
def submit(
    spec: SpecArg,
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    context: ContextOpt = None,
    store: Annotated[str | None, typer.Option("--store", help="s3://bucket/prefix [default: the chart's store]",
                                              show_default=False)] = None,
    template: Annotated[str, typer.Option("--template", help="the WorkflowTemplate to run")] = DEFAULT_TEMPLATE,
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="extra workflow label KEY=VALUE "
                                                    "(repeatable)", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the Workflow YAML (for `argo submit -`) "
                                          "and contact nothing")] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="after submitting, wait until it finishes")] = False,
    interval: IntervalOpt = 5.0,
) -> None:
    """Submit a sweep to the cluster as an Argo Workflow (the chart's xit-sweep template); print its name."""
    from xit.cluster import submit_command

    code = submit_command(spec, namespace=namespace, context=context, store=store, template=template,
                          labels=label, dry_run=dry_run, follow_it=follow, interval=interval)
    if code:
        raise typer.Exit(code)


@app.command()
def status(
    name: Annotated[str, typer.Argument(help="the workflow's name (as `xit submit` printed it)", show_default=False)],
    namespace: NamespaceOpt = DEFAULT_NAMESPACE,
    context: ContextOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="poll until the workflow finishes")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the status as JSON")] = False,
    interval: IntervalOpt = 5.0,
) -> None:
    """Where a cluster sweep stands: stages done/running/pending/failed per kind. Exit 1 if it Failed/Errored."""
    from xit.cluster import status_command

    code = status_command(name, namespace=namespace, context=context, follow_it=follow, as_json=as_json,
                          interval=interval)
    if code:
        raise typer.Exit(code)


def _quiet_libraries() -> None:
    """xit draws its own progress bars; the libraries' own bars and banners would interleave.

    Through the environment, which transformers and huggingface_hub read when they are first imported, so
    commands that never load a model (validate, plan, tasks) do not import them at all.
    """
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _click_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """click's usage-error and abort types: typer bundles its own click (typer._click), and a separately
    installed click has types of its own, so both are matched."""
    import importlib

    usage: list[type] = []
    abort: list[type] = []
    from typer.exceptions import Abort

    abort.append(Abort)
    for name in ("typer._click", "click"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for found, attr in ((usage, "ClickException"), (abort, "Abort")):
            t = getattr(mod, attr, None) or getattr(getattr(mod, "exceptions", None), attr, None)
            if isinstance(t, type):
                found.append(t)
    return tuple(usage), tuple(abort)


def _usage_line(e: Exception) -> str:
    """A click usage error in one line: the command, the problem, where to look."""
    ctx = getattr(e, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None else ""
    helper = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    msg = " ".join(str(e.format_message() if hasattr(e, "format_message") else e).split())
    return f"{where}{msg or type(e).__name__}{helper}"


def main() -> None:
    _quiet_libraries()
    try:
        code = app(standalone_mode=False)  # typer.Exit(n) comes back as n here, not as an exception
        if isinstance(code, int) and code:
            sys.exit(code)
    except WorkError as e:  # a failure during work, in one line (a XitError too: caught first)
        ui.console.print(f"[red]failed:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except XitError as e:
        ui.console.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        ui.console.print("[yellow]interrupted[/]: run the same command again to resume")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # noqa: BLE001 - the last line of defence prints what failed
        usage, abort = _click_types()
        if type(e).__name__ == "NoArgsIsHelpError":  # `xit` or `xit stage` alone: the help was printed
            sys.exit(2)
        if isinstance(e, usage):  # no spec, an unknown option, one argument too many: one line, exit 2
            ui.console.print(f"[red]error:[/] {escape(_usage_line(e))}", highlight=False, soft_wrap=True)
            sys.exit(2)
        if isinstance(e, abort):
            sys.exit(130)
        traceback.print_exc()
        ui.console.print(f"[red]failed:[/] {type(e).__name__}: {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
