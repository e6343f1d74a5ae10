"""The `xit` command line.

Exit codes: 0 ok; 2 bad input (one line naming the problem, nothing started or written);
1 failure during work; 130 interrupted.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from xit import __version__, ui
from xit.errors import XitError

if TYPE_CHECKING:
    from xit.plan import Plan, Stage

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Intermediate-task training for zero-shot cross-lingual transfer.")
stage_app = typer.Typer(no_args_is_help=True, help="Run a single stage of a plan (what cluster pods run).")
app.add_typer(stage_app, name="stage")

SpecArg = Annotated[Path, typer.Argument(help="experiment spec (YAML)", show_default=False)]
StoreOpt = Annotated[str, typer.Option("--store", help="store: a local directory")]


def _version(value: bool) -> None:
    if value:
        ui.out.print(f"xit {__version__}")
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
    from xit.spec import load_spec

    s = load_spec(spec)
    ui.out.print(f"ok: {spec}: sweep {s.name!r}, {len(s.intermediate)} intermediate configuration(s) × "
                 f"{len(s.targets)} target(s) × {len(s.seeds)} seed(s), model {s.model}")


@app.command()
def plan(spec: SpecArg,
         as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False) -> None:
    """Show the stages a spec needs (a tree), or the plan JSON that `stage run` reads."""
    from xit.plan import build_plan
    from xit.spec import load_spec

    p = build_plan(load_spec(spec))
    if as_json:
        sys.stdout.write(p.to_json() + "\n")
        return
    ui.out.print(_tree(p))


def _tree(p: Plan) -> Tree:
    root = Tree(f"[bold]sweep {p.name}[/] [dim]{p.sweep_id}, {len(p.stages)} stages[/]")
    children: dict[str, list] = {}
    for s in p.stages:
        for k in s.inputs[:1]:
            children.setdefault(k, []).append(s)

    def add(parent: Tree, s: Stage) -> None:
        node = parent.add(f"[cyan]{s.kind}[/] {escape(s.label.split(' ', 1)[-1])} [dim]{s.key}[/]")
        for c in children.get(s.key, []):
            if c.kind != "report":
                add(node, c)

    for s in p.stages:
        if not s.inputs:
            add(root, s)
    for s in p.by_kind("report"):
        root.add(f"[cyan]report[/] [dim]{s.key} ← {len(s.inputs)} stages[/]")
    return root


@app.command()
def run(
    spec: SpecArg,
    store: StoreOpt = "./xit-runs",
    out: Annotated[Path | None, typer.Option("--out", help="report directory [default: reports/<name>]")] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Run a whole sweep locally: plan, every stage in order (committed ones skipped), report."""
    from xit.runner import run_sweep
    from xit.spec import load_spec
    from xit.store import open_store

    s = load_spec(spec)
    summary = run_sweep(s, open_store(store), out or Path("reports") / s.name, show_progress=progress)
    ui.console.print(f"{summary.count('done')} stage(s) run, {summary.count('skipped')} skipped")


@stage_app.command("run")
def stage_run(
    plan_path: Annotated[Path, typer.Option("--plan", help="plan JSON (from `xit plan --json`)")],
    key: Annotated[str, typer.Option("--key", help="the stage's key")],
    store: StoreOpt = "./xit-runs",
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Run exactly one stage: read inputs from the store, commit outputs; skip if committed."""
    from xit.plan import Plan
    from xit.stage import run_stage
    from xit.store import open_store

    p = Plan.load(plan_path)
    st = open_store(store)
    with ui.progress(progress) as bars:
        status = run_stage(p, key, st, bars)
    ui.out.print(f"{status}: {p.stage(key).label} ({key})")


@app.command()
def report(
    source: Annotated[Path, typer.Argument(help="experiment spec (YAML) or plan (JSON)", show_default=False)],
    store: StoreOpt = "./xit-runs",
    out: Annotated[Path | None, typer.Option("--out", help="report directory [default: reports/<name>]")] = None,
) -> None:
    """Write the report of a sweep whose stages are in the store (and print its table)."""
    from xit.plan import Plan, build_plan
    from xit.runner import export_report
    from xit.spec import load_spec
    from xit.stage import run_stage
    from xit.store import open_store

    p = Plan.load(source) if source.suffix == ".json" else build_plan(load_spec(source))
    st = open_store(store)
    run_stage(p, p.by_kind("report")[0].key, st)
    export_report(p, st, out or Path("reports") / p.name)


@app.command()
def tasks(
    family: Annotated[str | None, typer.Option(help="only this family (xtreme, english, demo)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """List the registered tasks: name, format, languages, metric, source."""
    from xit.tasks.registry import all_tasks

    ts = [t for t in all_tasks() if family is None or t.family == family]
    if as_json:
        rows = [{"name": t.name, "family": t.family, "format": t.format, "languages": list(t.languages),
                 "metric": t.metric, "roles": sorted(t.roles), "source": t.source} for t in ts]
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    table = Table(title="xit tasks")
    for col in ("task", "family", "format", "roles", "languages", "metric", "source"):
        table.add_column(col, overflow="fold")
    for t in ts:
        langs = f"{len(t.languages)}: " + " ".join(t.languages)
        table.add_row(t.name, t.family, t.format, "/".join(sorted(t.roles)), langs, t.metric, t.source)
    ui.out.print(table)


def _quiet_libraries() -> None:
    """xit draws its own progress bars; the libraries' own bars and banners would interleave."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def main() -> None:
    _quiet_libraries()
    try:
        app(standalone_mode=False)
    except XitError as e:
        ui.console.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        ui.console.print("[yellow]interrupted[/]: run the same command again to resume")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # noqa: BLE001 - the last line of defence prints what failed
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(2)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(130)
        traceback.print_exc()
        ui.console.print(f"[red]failed:[/] {type(e).__name__}: {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
