"""One typed settings object for the whole service.

Every door (CLI, batch job, API) reads configuration from here, so a deployment is described by
environment variables (prefix ``SCORING_``) or CLI options mapped onto the same fields; nothing else
reads ``os.environ``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.encoder import DEFAULT_BATCH_SIZE


class Settings(BaseSettings):
    """Deployment configuration.

    Attributes are documented where a deployer needs the *why*; every field maps to ``SCORING_<NAME>``.
    """

    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore")

    home: Path = Field(default=Path(".scoring"), description="Working directory for caches and the default store.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; SQLite under `home` when unset, PostgreSQL by URL.",
    )
    cache_dir: Path | None = Field(default=None, description="Embedding cache; `home`/cache when unset.")
    encoder: str = Field(
        default="all-MiniLM-L6-v2",
        description="Bundled encoder name or a directory holding a sentence-transformers model.",
    )
    encoder_precision: str = Field(
        default="auto",
        description="auto | fp32 | bf16. auto uses bf16 only on CPUs with native bf16 (avx512_bf16/AMX), "
        "where it gives near-identical vectors much faster (machine notes; not benchmarked here).",
    )
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=1024,
                            description="Encoder batch size (windows per forward pass; every pass has this many rows).")
    block_size: int = Field(
        default=1024, ge=1, description="Submissions per checkpointed block of a batch job (the unit of resume); "
        "larger blocks let the encoder sort more windows by length (less padding)."
    )
    max_text_chars: int = Field(
        default=500_000, ge=1, description="Evidence longer than this is rejected rather than silently cut."
    )
    min_labelled_per_criterion: int = Field(
        default=30, ge=2, description="Below this many human scores a criterion falls back to the zero-shot scorer."
    )
    chunk_overlap_tokens: int = Field(default=32, ge=0, description="Token overlap between windows of long texts.")
    scorer: Literal["ensemble", "finetuned"] = Field(
        default="ensemble", description="What `scoring train` fits per criterion with enough human scores: the "
        "embedding + n-gram ensemble, or a fine-tuned transformer (much slower on a CPU) where data allows.",
    )
    finetune_min_scores: int = Field(
        default=300, ge=60, description="Fewest human scores for which a criterion is fine-tuned; fewer: the ensemble."
    )
    finetune_epochs: int = Field(default=4, ge=1, le=50, description="Fine-tuning epochs (the best on validation is kept).")
    finetune_max_length: int = Field(
        default=512, ge=16, le=512, description="Tokens a fine-tuned scorer reads per text (the rest is truncated)."
    )
    seed: int = 13
    pseudonym_key: str | None = Field(
        default=None,
        description="Secret key of the keyed hash (HMAC-SHA256) that turns submission and assessor ids into "
        "pseudonyms in report exports. Unset: a random key per report, so exports cannot be linked across runs.",
    )
    audit_sample_window: int | None = Field(
        default=None, ge=1, description="Drift monitor: most recent N blind audit items per criterion "
        "(unset: the gate policy's `drift.window`).",
    )
    # service API
    credential_key: Path | None = Field(default=None, description="Issuer's Ed25519 private key (PEM, from "
                                        "`scoring credentials keygen`) the API signs Open Badges with.")
    credential_issuer_id: str | None = Field(default=None, description="URL or DID of the issuing organisation.")
    credential_issuer_name: str = Field(default="", description="Its name as shown on the badge.")
    issuer: str = Field(default="local", min_length=1, max_length=200,
                        description="Owner recorded for submissions `scoring score --store` records.")
    model_dir: Path | None = Field(
        default=None, description="Model directory the API scores with (its LATEST version) when the registry "
        "has no promoted model for a rubric.",
    )
    lease_seconds: int = Field(
        default=900, ge=1, le=86_400, description="How long an assessor holds a claimed queue item before "
        "it returns to the queue (a closed laptop must not lock an item forever).",
    )
    max_held_items: int = Field(
        default=5, ge=1, le=1000, description="How many queue items one assessor may hold at once through the API "
        "(the page works one at a time): one client must not lock the whole queue until the leases expire.",
    )
    rationale_required: Literal["always", "disagreement", "disagreement_or_lowest", "never"] = Field(
        default="disagreement_or_lowest", description="When an assessor must write a rationale (a rubric's own "
        "`rationale:` wins): always; on disagreement with the machine's level; on disagreement or on the "
        "lowest level; never.",
    )
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest JSON request body; larger ones get 413.",
    )
    max_upload_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest batch-job upload (a backlog file); larger get 413.",
    )

    # audit log trust anchor (kept outside the database)
    audit_key: Path | None = Field(
        default=None, description="Ed25519 private key (PEM, from `scoring audit keygen`) that signs audit "
        "checkpoints. Keep it off the database server: whoever holds it can sign a rewritten log.",
    )
    audit_public_key: Path | None = Field(
        default=None, description="Its public key, for verifying checkpoints and proofs (default: derived from "
        "`audit_key`).",
    )
    audit_checkpoint_dir: Path | None = Field(
        default=None, description="Folder of signed audit checkpoints (`home`/checkpoints when unset); copy it "
        "elsewhere after each `scoring audit checkpoint`. The API serves it read-only at /audit/checkpoints.",
    )

    def resolved_checkpoint_dir(self) -> Path:
        return self.audit_checkpoint_dir if self.audit_checkpoint_dir is not None else self.home / "checkpoints"

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else self.home / "cache"

    def jobs_dir(self) -> Path:
        """Work folders of the API's batch jobs (input, outputs, progress file): `home`/jobs."""
        return self.home / "jobs"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'scoring.db').as_posix()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()


def settings_problem(exc: Exception) -> str:
    """A settings error in the user's words: which environment variable, what it holds, what it should be
    (pydantic's own text is a multi-line report about a model the user never wrote)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for e in errors():
        name = "SCORING_" + str(e.get("loc", ("?",))[0]).upper()
        parts.append(f"{name}={e.get('input')!r}: {e.get('msg', 'invalid')}")
    return "environment setting " + "; ".join(parts)


OTHER_NAMES = ("SCORING_FAULT_AT", "SCORING_TEST_POSTGRES_URL")  # read by the tests' fault points and fixtures


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """One line per ``SCORING_*`` environment variable that names no setting (a typo such as
    ``SCORING_DATABSE_URL`` is otherwise ignored without a word, and the default used), with the closest
    setting's name where one is close."""
    import difflib

    known = ["SCORING_" + k.upper() for k in Settings.model_fields]
    out = []
    for name in sorted(environ):
        if name.startswith("SCORING_") and name not in known and name not in OTHER_NAMES:
            near = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            out.append(f"{name} is not a setting and is ignored" + (f"; did you mean {near[0]}?" if near else ""))
    return out

