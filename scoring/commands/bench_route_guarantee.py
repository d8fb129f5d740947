"""``scoring bench route-guarantee``: does the routing promise hold on calibration/test splits it never saw?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``route-guarantee`` to the shared ``bench`` group."""
    from scoring.commands._bench import bench_app

    @bench_app.command("route-guarantee")
    def route_guarantee(
        data_dir: Annotated[Path, typer.Option("--data-dir", help="The asap_aes folder (e.g. ../shared/data/asap_aes).")],
        fold: Annotated[int, typer.Option(help="Benchmark fold: trains once on its training ids.")] = 0,
        sets: Annotated[str, typer.Option(help="Comma-separated essay sets.")] = "1,2,3,4,5,6,7,8",
        splits: Annotated[int, typer.Option(min=1, help="Random calibration/test splits of the held-out ids.")] = 20,
        delta: Annotated[float, typer.Option(min=0.001, max=0.5, help="Allowed probability of a rule below the bar.")] = 0.05,
        cal_share: Annotated[float, typer.Option(min=0.2, max=0.8, help="Share of held-out ids used to calibrate.")] = 0.5,
        signals: Annotated[str, typer.Option(
            help="Confidence signals to measure, comma-separated: probability (the router's rule), +conformal, "
                 "+views, +distance.")] = "probability,+conformal,+views,+distance",
        cache_dir: Annotated[Path, typer.Option(help="Embedding cache for training (kept between runs).")] = Path(".scoring/bench-cache"),
        out: Annotated[Path, typer.Option("--out", help="Held-out probabilities (cache/) and per-split results.")] = Path("bench-out/route-guarantee"),
    ) -> None:
        """Violation rate of the routing promise over random calibration/test splits, before and after LTT."""
        from eval.bench_route_guarantee import SIGNALS, run

        chosen = tuple(s.strip() for s in signals.split(",") if s.strip())
        unknown = [s for s in chosen if s not in SIGNALS]
        if unknown:
            raise typer.BadParameter(f"expected signals among {', '.join(SIGNALS)}, found {', '.join(unknown)}",
                                     param_hint="--signals")
        try:
            set_list = [int(x) for x in sets.split(",")]
        except ValueError:
            raise typer.BadParameter(f"expected comma-separated set numbers 1-8, found {sets!r}", param_hint="--sets") from None
        typer.echo(f"# reproduce: scoring bench route-guarantee --data-dir {data_dir} --fold {fold} --sets {sets} "
                   f"--splits {splits} --delta {delta} --cal-share {cal_share} --signals {signals}")
        summary = run(data_dir, fold=fold, sets=set_list, splits=splits, delta=delta, cal_share=cal_share,
                      cache_dir=cache_dir, out_dir=out, signals=chosen, echo=typer.echo)
        typer.echo(json.dumps(summary))
