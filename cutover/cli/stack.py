"""CLI commands of the stack area: train, models list/show, decide, evaluate.

Thin by design: each command parses, calls ``cutover.stack``, prints. xgboost and pyarrow are
imported inside the commands so ``cutover --help`` stays fast. Data goes to stdout (tables or
``--json``), progress and diagnostics to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

models_app = typer.Typer(help="The local model registry of the reference stack.",
                         no_args_is_help=True)
MODELS_HELP = "Model registry folder (default: $CUTOVER_MODELS, else ./models)."


def register(app: typer.Typer) -> None:
    """Add this area's commands and groups to the root app."""
    app.command("train")(train)
    app.command("decide")(decide)
    app.command("evaluate")(evaluate)
    models_app.command("list")(models_list)
    models_app.command("show")(models_show)
    app.add_typer(models_app, name="models")


def _when(text: str | None, option: str) -> Any:
    """A UTC datetime from YYYY-MM-DD or an ISO timestamp (naive means UTC)."""
    import datetime as dt

    from cutover.errors import InputError

    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{option} {text!r} is not a date (YYYY-MM-DD) or ISO timestamp") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _registry(models: Path | None) -> Path:
    from cutover.stack.registry import models_dir

    return models_dir(models)


def train(
    store: Path = typer.Argument(..., help="Traffic store (day=YYYY-MM-DD/*.parquet)."),
    models: Path | None = typer.Option(None, "--models", help=MODELS_HELP),
    until: str | None = typer.Option(None, "--until", help="Train on rows before this date."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1,
                             help="Seed: same data and seed give the same version."),
    strict: bool = typer.Option(False, "--strict", help="Refuse (exit 1, nothing saved) when a"
                                " feature is constant or labels have no label time."),
    as_json: bool = typer.Option(False, "--json", help="Print the model card as one JSON object."),
) -> None:
    """Train the fraud model and the gateway success table; save them in the registry.

    Warns on stderr when a feature is constant or labels lack times (the card states both).
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from cutover.stack.model import train as train_model
    from cutover.store.traffic import count_rows

    when = _when(until, "--until")
    total = count_rows(store)
    err = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} rows"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"features of {total:,} rows, then fit", total=total)
        card = train_model(store, _registry(models), until=when, seed=seed, strict=strict,
                           on_progress=lambda done: progress.update(task, completed=done))
    from cutover.stack.checks import training_warnings
    for warning in training_warnings(card.to_dict().get("checks", {})):
        err.print(f"warning: {warning}", highlight=False, markup=False)
    if as_json:
        typer.echo(json.dumps(card.to_dict()))
        return
    _print_card(card.to_dict())


def _print_card(card: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    m = card["metrics"]
    t = m["thresholds"]
    table = Table(title=f"model {card['version']}", show_header=False)
    rows = [
        ("data window", f"{card['data_window']['from']} .. {card['data_window']['until']}"),
        ("rows (train / valid)", f"{card['rows']['train']:,} / {card['rows']['valid']:,}"),
        ("frauds (train / valid)", f"{card['rows']['frauds_train']:,} / {card['rows']['frauds_valid']:,}"),
        ("trees", str(card["trees"])),
        ("PR-AUC (valid)", f"{m['pr_auc']:.3f}"),
        ("recall at 1% FPR", f"{m['recall_at_1pct_fpr']:.3f}"),
        ("Brier score", f"{m['brier']:.4f}"),
        ("review / decline at", f"{t['review_at']:.3f} / {t['decline_at']:.3f}"),
        ("reasons", f"{card['reasons']['method']} ("
                    + ", ".join(f"{k} {v:.1f} µs/row" for k, v in card["reasons"]["cost_us_per_row"].items())
                    + ")"),
        ("features", ", ".join(card["features"])),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)


def models_list(
    models: Path | None = typer.Option(None, "--models", help=MODELS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array."),
) -> None:
    """List the trained model versions, oldest first; * marks LATEST."""
    from rich.console import Console
    from rich.table import Table

    from cutover.stack.registry import LATEST, list_cards

    reg = _registry(models)
    cards = list_cards(reg)
    latest = (reg / LATEST).read_text().strip() if (reg / LATEST).is_file() else None
    rows = [{"version": c["version"], "latest": c["version"] == latest, "trained_at": c.get("trained_at"),
             "rows": c["rows"]["total"], "pr_auc": c["metrics"]["pr_auc"],
             "recall_at_1pct_fpr": c["metrics"]["recall_at_1pct_fpr"]} for c in cards]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("version", "trained at", "rows", "PR-AUC", "recall@1%FPR")
    for r in rows:
        table.add_row(("* " if r["latest"] else "  ") + r["version"], str(r["trained_at"]),
                      f"{r['rows']:,}", f"{r['pr_auc']:.3f}", f"{r['recall_at_1pct_fpr']:.3f}")
    Console().print(table)


def models_show(
    version: str = typer.Argument("latest", help="A version, or 'latest'."),
    models: Path | None = typer.Option(None, "--models", help=MODELS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the model card as one JSON object."),
) -> None:
    """Show one model card."""
    from cutover.stack.registry import read_card

    card = read_card(_registry(models), None if version == "latest" else version)
    if as_json:
        typer.echo(json.dumps(card))
        return
    _print_card(card)


def _read_txn(text: str) -> dict[str, Any]:
    from cutover.errors import InputError

    source = "--txn"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise InputError(f"--txn {source}: cannot read: {exc}") from exc
    try:
        txn = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not JSON: {exc}") from exc
    if not isinstance(txn, dict):
        raise InputError(f"{source}: expected one JSON object (a transaction)")
    if isinstance(txn.get("ts"), str):
        txn["ts"] = _when(txn["ts"], f"{source} field 'ts'")
    from cutover.values import check_txn
    check_txn(txn, source)
    return txn


def decide(
    txn: str = typer.Option(..., "--txn", help="A transaction as JSON, or @FILE holding one."),
    models: Path | None = typer.Option(None, "--models", help=MODELS_HELP),
    version: str | None = typer.Option(None, "--version", help="Model version (default: latest)."),
    rules: Path | None = typer.Option(None, "--rules",
                                      help="Rules file (default: cutover/fixtures/rules/default.toml)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as one JSON object."),
) -> None:
    """Make one online decision and explain it (reason codes in plain words)."""
    from cutover.stack import default_stack
    from cutover.stack.reasons import sentences

    request = _read_txn(txn)  # refused before any model is loaded
    stack = default_stack(_registry(models), version, rules)
    result = stack.decide(request)
    result["reasons"] = sentences(result["reason_codes"], result.get("reason_values"),
                                  getattr(stack, "reference", None))
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    typer.echo(f"{result['txn_id']}: {result['decision'].upper()}  score {result['score']:.3f}  "
               f"route {result['route']}  fee {result['fee_minor']}  p_success "
               f"{result['p_success']:.3f}  retry {result['retry_plan']}  model {result['model_version']}"
               f"  {result['latency_us']} µs")
    for code, text in zip(result["reason_codes"], result["reasons"], strict=True):
        typer.echo(f"  {code}: {text}")


def evaluate(
    store: Path = typer.Argument(..., help="Traffic store with labels."),
    models: Path | None = typer.Option(None, "--models", help=MODELS_HELP),
    since: str = typer.Option(..., "--since", help="First day of the held-out window."),
    until: str = typer.Option(..., "--until", help="End of the window (exclusive)."),
    strict: bool = typer.Option(False, "--strict", help="Refuse (exit 1) when the window overlaps"
                                " the model's training window."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as one JSON object."),
) -> None:
    """Compare the stack with the legacy rules on a held-out, labelled window.

    Warns on stderr (--strict: refuses) when the window overlaps the training window.
    """
    from rich.console import Console

    from cutover.errors import CheckFailed
    from cutover.stack.checks import window_overlap
    from cutover.stack.evaluate import evaluate as run_evaluate
    from cutover.stack.registry import read_card

    start = _when(since, "--since")
    overlap = window_overlap(read_card(_registry(models)), start)
    if overlap and strict:
        raise CheckFailed(f"--strict: {overlap}")
    if overlap:
        Console(stderr=True).print(f"warning: {overlap}", highlight=False, markup=False)
    result = run_evaluate(store, _registry(models), start, _when(until, "--until"))
    if as_json:
        typer.echo(json.dumps(result))
        return
    _print_evaluation(result)


def _print_evaluation(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from cutover.domain import format_money

    lg, st = result["sides"]["legacy"], result["sides"]["stack"]
    table = Table("", "legacy", "stack", title=f"{result['since']} .. {result['until']}  "
                  f"(model {result['model_version']})")
    for key, fmt in (("rows", "{:,}"), ("approval_rate", "{:.2%}"), ("declined", "{:,}"),
                     ("reviewed", "{:,}"), ("fraud_rows", "{:,}"), ("fraud_caught_count", "{:,}"),
                     ("fraud_caught_rate", "{:.1%}"), ("false_decline_count", "{:,}"),
                     ("expected_success_estimate", "{:.3f}")):
        table.add_row(key, fmt.format(lg[key]), fmt.format(st[key]))
    for key in ("fraud_caught", "false_decline", "fees"):
        table.add_row(f"{key} (USD, indicative)", f"{lg['usd_indicative'][key]:,.2f}",
                      f"{st['usd_indicative'][key]:,.2f}")
    if "recorded_success_rate" in lg:
        table.add_row("recorded success (legacy routes)", f"{lg['recorded_success_rate']:.3f}", "")
    if "simulator_true_success" in lg or "simulator_true_success" in st:
        # A foreign export has no simulator truth for the legacy routes: shown as "-".
        table.add_row("simulator's true success (reference)",
                      *("-" if side.get("simulator_true_success") is None
                        else f"{side['simulator_true_success']:.3f}" for side in (lg, st)))
    money = Table("cur", "caught legacy", "caught stack", "false decl. legacy", "false decl. stack",
                  "better", title="money by currency (major units)")
    for cur, s in st["by_currency"].items():
        g = lg["by_currency"].get(cur, {})
        money.add_row(cur, *(format_money(int(v), cur).split()[0] for v in (
            g.get("fraud_caught_minor", 0), s["fraud_caught_minor"], g.get("false_decline_minor", 0),
            s["false_decline_minor"])), "yes" if result["stack_better"][cur] else "no")
    console = Console()
    console.print(table)
    console.print(money)
    better = sum(result["stack_better"].values())
    verdict = "yes" if result["stack_better_overall"] else "no"
    console.print(f"stack catches at least as much fraud amount at an equal or lower false-decline "
                  f"amount in every currency: {verdict} ({better} of {len(result['stack_better'])}"
                  " currencies)")
    console.print(result["note"], style="dim")
