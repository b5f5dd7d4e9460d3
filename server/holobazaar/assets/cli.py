"""`holobazaar assets ingest PATH...`: the pipeline from the command line, with a progress
bar for batches and a report per asset (sizes, triangles, warnings, budgets)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from holobazaar.commands import (
    AssetStore,
    BrokerUrl,
    DatabaseUrl,
    DataDir,
    build_settings,
    content_loader,
    upgraded_engine,
)

assets_app = typer.Typer(no_args_is_help=True, help="Uploaded 3D models and images.")



@assets_app.command("ingest")
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(
        help="Model files (.glb; .gltf or .obj with the files it names; .stl, .ply), images, "
             ".zip archives or folders (all their files); each is one asset.", exists=True)],
    market: Annotated[str | None, typer.Option(help="Market the assets belong to.")] = None,
    name: Annotated[str | None, typer.Option(
        help="Scene name of the asset (one path only) [from the file name].")] = None,
    units: Annotated[str, typer.Option(help="Units of OBJ/STL/PLY: m, cm, mm, in, ft.")] = "m",
    up: Annotated[str, typer.Option(help="Up axis of the source: y or z.")] = "y",
    size: Annotated[float | None, typer.Option(
        help="Real-world largest dimension in metres.", min=0.001, max=100)] = None,
    data_dir: DataDir = None, database_url: DatabaseUrl = None, broker_url: BrokerUrl = None,
    asset_store: AssetStore = None,
) -> None:
    """Process models and images into web-ready files and store them; exit 1 if any fails."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from holobazaar.assets import budgets, jobs, storage
    from holobazaar.assets.pipeline import Refused
    from holobazaar.assets.pipeline.options import UNITS
    from holobazaar.assets.routes import options_from

    if units not in UNITS or up not in ("y", "z"):
        typer.echo(f"error: --units must be one of {', '.join(UNITS)} and --up y or z", err=True)
        raise typer.Exit(2)
    if name is not None and len(paths) != 1:
        typer.echo("error: --name needs exactly one path", err=True)
        raise typer.Exit(2)
    settings = build_settings(data_dir=data_dir, database_url=database_url,
                              broker_url=broker_url, asset_store=asset_store)
    engine = upgraded_engine(settings)
    store = storage.open_files(settings.data_dir, settings.asset_store, engine,
                               settings.asset_s3_endpoint)
    options = options_from(settings, units=units, up=up, size=size)
    failed = 0
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True) as progress:
        task = progress.add_task("ingesting", total=len(paths))
        for path in paths:
            progress.update(task, description=f"ingesting {path.name}")
            try:
                asset = jobs.ingest_paths(engine, store, [path], market=market,
                                             name=name, options=options, uploaded_by="cli")
            except (Refused, storage.StoreUnavailable) as exc:
                progress.console.print(f"{path}: refused: {exc}")
                failed += 1
            else:
                results.append((path, asset))
                failed += asset.status != "ready"
            progress.advance(task)
    for path, asset in results:
        if asset.status != "ready":
            typer.echo(f"{path}: refused: {asset.error}")
            continue
        lods = ", ".join(f"{f.role} {f.bytes:,} B {f.triangles:,} tris" for f in asset.files
                         if f.role != "thumbnail")
        typer.echo(f"{path}: {asset.name} ({asset.id[:12]}) {asset.input_bytes:,} B -> {lods}; "
                   f"{asset.processing_ms} ms")
        for warning in asset.warnings:
            typer.echo(f"  warning {warning['code']}: {warning['message']}")
    for line in budgets.report_for_assets(settings, engine, [a for _, a in results],
                                         content_loader(ctx)):
        typer.echo(f"budget: {line}")
    engine.dispose()
    if failed:
        raise typer.Exit(1)
