"""``scoring bench coldstart``: the cold-start scorer against the peer, and learning curves of selection vs random."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``coldstart`` to the shared ``bench`` group."""
    from scoring.commands._bench import bench_app

    @bench_app.command("coldstart")
    def coldstart(
        data_dir: Path | None = typer.Option(None, "--data-dir", help="The asap_aes folder (e.g. ../shared/data/asap_aes)."),
        talkmoves: Path | None = typer.Option(None, "--talkmoves", help="The talkmoves folder: one lesson-level "
                                              "criterion derived from the human codes instead."),
        sets: str = typer.Option("1,2,3,4,5,6,7,8", help="Comma-separated ASAP-AES essay sets."),
        cache_dir: Path = typer.Option(Path(".scoring/bench-cache"), help="Embedding cache (kept between runs)."),
        dev: bool = typer.Option(False, "--dev", help="Training ids only (80% pool / 20% held out): for design "
                                 "choices; the test ids are not read."),
        out: Path | None = typer.Option(None, "--out", help="Also write the full summary (per criterion) here as JSON."),
        ns: str = typer.Option("10,20,30,50,75,100,150,200", "--ns", help="Numbers of human scores on the learning curves."),
        max_lessons: int | None = typer.Option(None, "--max-lessons", min=20, help="With --talkmoves: only the first N "
                                               "lessons in file order (encoding all 566 is slow on a small CPU)."),
        dev_splits: int = typer.Option(1, "--dev-splits", min=1, help="With --dev: repeat on this many 80/20 splits of "
                                       "the training ids (seeds 0..K-1) and average the curves over them."),
        design_n: int | None = typer.Option(None, "--design-n", min=0, help="Scores chosen by the selection's "
                                            "experimental design before its k-center phase (default: the shipped "
                                            "DESIGN_N)."),
    ) -> None:
        """Zero-shot QWK vs the TF-IDF peer, level shares, and QWK after n human scores: selected vs random."""
        from eval.bench_coldstart import dev_splits_problem, run
        from models.encoder import get_encoder
        from scoring.selection import DESIGN_N
        from scoring.settings import get_settings

        try:
            set_list = [int(x) for x in sets.split(",") if x.strip()]
        except ValueError:
            raise typer.BadParameter(f"expected essay set numbers like 1,2,3, found {sets!r}", param_hint="--sets") from None
        try:
            grid = tuple(sorted({int(x) for x in ns.split(",") if x.strip()}))
        except ValueError:
            raise typer.BadParameter(f"expected numbers like 10,20,50, found {ns!r}", param_hint="--ns") from None
        if not grid or min(grid) < 2:
            raise typer.BadParameter(f"expected numbers of scores of at least 2, found {ns!r}", param_hint="--ns")
        if data_dir is None and talkmoves is None:
            raise typer.BadParameter("give --data-dir (ASAP-AES) or --talkmoves", param_hint="--data-dir")
        problem = dev_splits_problem(dev_splits, dev, talkmoves is not None)
        if problem:
            raise typer.BadParameter(problem, param_hint="--dev-splits")
        s = get_settings()
        enc = get_encoder(s.encoder, cache_dir, s.encoder_precision, s.batch_size, s.chunk_overlap_tokens)
        design = DESIGN_N if design_n is None else design_n
        cmd = "scoring bench coldstart" + (f" --data-dir {data_dir} --sets {sets}" if data_dir else "") + (
            f" --talkmoves {talkmoves}" if talkmoves else "") + (" --dev" if dev else "") + f" --ns {ns}" + (
            f" --max-lessons {max_lessons}" if max_lessons else "") + (
            f" --dev-splits {dev_splits}" if dev_splits > 1 else "") + f" --design-n {design}"
        typer.echo(f"# reproduce: {cmd}")
        try:
            summary = run(data_dir if talkmoves is None else None, talkmoves, enc.encode, set_list, dev=dev, ns=grid,
                          echo=typer.echo, max_lessons=max_lessons, dev_splits=dev_splits, design_n=design)
        except (OSError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(summary, indent=2))
        summary.pop("per_criterion", None)
        summary.pop("splits", None)  # each split in full: in --out only
        typer.echo(json.dumps(summary))
