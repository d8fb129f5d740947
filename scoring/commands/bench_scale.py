"""``scoring bench scale``: local engine vs Ray on a local two-node cluster (ASAP-AES essays, cold cache)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from scoring.commands._bench import bench_app

    @bench_app.command("scale")
    def bench_scale(
        data_dir: Path = typer.Option(..., "--data-dir", help="The asap_aes folder (e.g. ../shared/data/asap_aes)."),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Score only the first N essays (essay-id "
                                         "order); default all 12,978."),
        engines: str = typer.Option("local,ray", "--engines", help="local,ray | local (no Ray: e.g. a GPU machine) "
                                    "| ray."),
        device: str = typer.Option("cpu", "--device", help="Encoder device: cpu | cuda."),
        fold: int = typer.Option(0, "--fold", help="Fold whose training ids train the model."),
        train_set: int = typer.Option(1, "--train-set", min=1, max=8, help="Essay set the model is trained on."),
        block_size: int = typer.Option(256, "--block-size", min=1, help="Submissions per block (both engines)."),
        nodes: int = typer.Option(2, "--nodes", min=1, help="ray start processes of the local Ray cluster; each "
                                  "gets cores / nodes CPUs."),
        cache_dir: Path = typer.Option(Path(".scoring/bench-cache"), "--cache-dir", help="Embedding cache for "
                                       "training only (scoring runs use an empty cache each)."),
        out: Path = typer.Option(Path("bench-out/scale"), "--out", help="Where summary.json goes."),
    ) -> None:
        """Time `scoring score` with the local engine and with Ray at equal cores; project 1M submissions."""
        from eval.bench_scale import run

        chosen = tuple(e.strip() for e in engines.split(",") if e.strip())
        if not chosen or set(chosen) - {"local", "ray"}:
            raise typer.BadParameter(f"expected local, ray or local,ray, found {engines!r}", param_hint="--engines")
        if device not in ("cpu", "cuda"):
            raise typer.BadParameter(f"expected cpu or cuda, found {device!r}", param_hint="--device")
        if device == "cuda" and "ray" in chosen:  # the CLI's Ray engine asks for no GPUs per actor
            raise typer.BadParameter("--device cuda times the local engine only: add --engines local",
                                     param_hint="--device")
        typer.echo(f"# reproduce: scoring bench scale --data-dir {data_dir}"
                   + (f" --limit {limit}" if limit else "") + f" --engines {','.join(chosen)} --device {device}"
                   f" --fold {fold} --train-set {train_set} --block-size {block_size} --nodes {nodes}")
        summary = run(data_dir, limit=limit, fold=fold, train_set_id=train_set, cache_dir=cache_dir, out_dir=out,
                      engines=chosen, device=device, block_size=block_size, nodes=nodes, echo=typer.echo)
        typer.echo(json.dumps(summary))
