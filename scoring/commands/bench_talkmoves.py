"""``scoring bench talkmoves``: transcript highlights on TalkMoves and reflection categories on CEReD.

The research data are read from the paths given (never bundled); figures go to stdout, the last line
is one JSON object so a CI job or a notebook can parse it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    """Add ``talkmoves`` to the shared ``bench`` group (created by ``scoring.commands.bench``)."""
    from scoring.commands._bench import bench_app

    @bench_app.command("talkmoves")
    def talkmoves(
        data_dir: Path = typer.Option(..., "--data-dir", help="Folder holding talkmoves_transcripts.csv."),
        cered_dir: Path | None = typer.Option(
            None,
            "--cered-dir",
            help="Folder holding CEReD sentences_en/{train,val,test}; skipped when unset.",
        ),
        cache_dir: Path | None = typer.Option(
            None, "--cache-dir", help="Embedding cache for training data (default: the settings' cache)."
        ),
        seed: int = typer.Option(13, help="Seed of the lesson train/test split."),
        test_share: float = typer.Option(0.2, help="Share of lessons held out for test."),
        max_lessons: int | None = typer.Option(None, help="Use only the first N lessons (quick runs)."),
        unit: str = typer.Option(
            "utterance",
            help="utterance: one coded row per transcript line; turn: rows merged per speaker turn.",
        ),
        max_train_turns: int = typer.Option(
            40000, help="Cap on training teacher turns (fixed-seed sample) to bound encoding time; 0 = all."
        ),
    ) -> None:
        """Highlight precision@5 per accountable-talk move vs base rate, turn AP, seconds per 9,000 words."""
        from eval.bench_talkmoves import dumps, run
        from models.encoder import Encoder
        from scoring.settings import get_settings

        settings = get_settings()

        def encoder_factory(cache: Path | None) -> Any:
            return Encoder(
                settings.encoder,
                cache_dir=cache,
                precision=settings.encoder_precision,
                batch_size=settings.batch_size,
                overlap=settings.chunk_overlap_tokens,
            )

        result = run(
            data_dir,
            cered_dir,
            encoder_factory,
            cache_dir or settings.resolved_cache_dir(),
            seed=seed,
            test_share=test_share,
            max_lessons=max_lessons,
            log=typer.echo,
            unit=unit,
            max_train_turns=max_train_turns or None,
        )
        typer.echo(dumps(result))
