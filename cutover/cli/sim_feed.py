"""CLI command `cutover sim feed-change`: break a copy of a store's feed, to rehearse a gate."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def add(sim_app: typer.Typer) -> None:
    """Add this module's command to the `cutover sim` group."""
    sim_app.command("feed-change")(feed_change)


def feed_change(
    store: Path = typer.Argument(..., help="The traffic store to copy (left unchanged)."),
    change: Path = typer.Option(..., "--change", help="A feed-change file, e.g. "
                                "cutover/fixtures/feed_changes/units_major.toml."),
    since: str = typer.Option(..., "--since", help="Start of the replay window (YYYY-MM-DD): "
                              "the segment and the change's start are taken within it."),
    out: Path = typer.Option(..., "--out", "-o", help="New store directory (must not exist)."),
    as_json: bool = typer.Option(False, "--json", help="Print what changed as one JSON object."),
) -> None:
    """Copy STORE to OUT with one feed change applied to one segment from a time on (the
    recorded legacy outcomes stay as booked). Reads the whole store into memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cutover.domain import TRAFFIC, conform
    from cutover.errors import InputError
    from cutover.sim.feed_change import apply_change, load_change
    from cutover.store.filters import parse_when
    from cutover.store.traffic import store_files, write_day_partitions

    if out.exists():
        raise InputError(f"--out {out} exists; choose a new directory")
    files = store_files(store)
    if not files:
        raise InputError(f"{store}: no traffic files")
    when = parse_when(since)
    table = pa.concat_tables([conform(pq.read_table(f), TRAFFIC) for f in files])
    broken, info = apply_change(table, load_change(change), int(when.timestamp() * 1_000_000))
    write_day_partitions(broken, out, "part-00000")
    info = {k: v for k, v in info.items() if k not in ("start_us", "first_us")} | {
        "out": str(out)}
    typer.echo(json.dumps(info) if as_json else
               f"{info['name']}: {info['field']} changed on {info['rows']:,} rows of "
               f"{info['segment']}; store written to {out}")
