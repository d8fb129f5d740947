"""A fine-tuned transformer scorer: the bundled encoder trained end to end on one criterion's human scores.

Why it exists beside ``EnsembleScorer``: frozen sentence embeddings plus n-grams are strong with a few
hundred scores, but they cannot learn what a rubric rewards inside the text; updating the encoder's own
weights can, and the published automated-scoring results on ASAP-AES come from fine-tuned encoders.
It is opt-in (``scoring train --scorer finetuned``) and used only "where data allows"
(``min_scores`` human scores or more; below that the criterion keeps the ensemble): on a CPU it trains
about a hundred times slower than the ensemble.

What it learns and outputs, following AES practice (a regression head, as in R2BERT): the score scaled
to [0, 1], mean-squared error, transformers' ``Trainer``; the epoch with the best validation QWK is
kept. Level probabilities are a normal around the prediction whose spread is the residual SD on the
held-out validation share (never trained on), and one score comes from cut-points on the expected
score fitted on those validation predictions for QWK (the ensemble's decision rule). It reads the first
``max_length`` tokens of a text (the encoder's limit is 512); longer evidence is truncated, which the
model card records.

It has no cross-fitted probabilities (that would mean one fine-tuning per fold): calibrate it on a
held-out file (``scoring calibrate`` without ``--cross-fitted``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import train_test_split

from models.encoder import cpu_has_native_bf16, resolve_encoder_path
from models.scorers import (
    ScorerError,
    _check_labels,
    _gaussian_proba,
    decide_with_cuts,
    fit_thresholds,
)

MIN_VALIDATION = 20


@contextmanager
def _quiet(show_progress: bool) -> Iterator[None]:
    """Keep transformers' load reports and progress bars out of a CLI that prints its own progress."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "head newly initialised" is the point of fine-tuning, not news
    if not show_progress:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)
        hf_logging.enable_progress_bar()


class _Encoded:
    """A map-style dataset of tokenised texts and scaled targets (what ``Trainer`` iterates)."""

    def __init__(self, enc: dict[str, list[list[int]]], target: np.ndarray | None):
        self.enc, self.target = enc, target

    def __len__(self) -> int:
        return len(self.enc["input_ids"])

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {k: v[i] for k, v in self.enc.items()}
        if self.target is not None:
            item["labels"] = float(self.target[i])
        return item


class FineTunedScorer:
    """Regression fine-tuning of a local transformer (default: the bundled all-MiniLM-L6-v2).

    Parameters
    ----------
    levels : the criterion's ordered score levels.
    encoder_name : bundled encoder name or a local model directory (never a hub id: no network).
    epochs, learning_rate, batch_size : the usual; defaults suit a few hundred to a few thousand texts.
    max_length : tokens read per text (truncation beyond).
    val_share : share of the scores held out for model selection, the spread and the cut-points.
    """

    uses_embeddings = False  # reads raw text: the pipeline need not encode texts for it

    def __init__(
        self,
        levels: list[int],
        encoder_name: str = "all-MiniLM-L6-v2",
        epochs: int = 4,
        learning_rate: float = 1e-4,
        batch_size: int = 16,
        max_length: int = 512,
        val_share: float = 0.15,
        random_state: int = 13,
        show_progress: bool = False,
    ):
        self.levels = list(levels)
        self.encoder_name = encoder_name
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_length = max_length
        self.val_share = val_share
        self.random_state = random_state
        self.show_progress = show_progress
        self.encoder: Any = None  # set by the model loader; unused (this scorer carries its own weights)

    # -- helpers ----------------------------------------------------------------------------------
    def _tokenizer(self) -> Any:
        if getattr(self, "_tok", None) is None:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(str(resolve_encoder_path(self.encoder_name)), local_files_only=True)
        return self._tok

    def _tokenise(self, texts: list[str]) -> dict[str, list[list[int]]]:
        enc = self._tokenizer()(texts, truncation=True, max_length=self.max_length)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def _scale(self, y: np.ndarray) -> np.ndarray:
        lo, hi = min(self.levels), max(self.levels)
        return (np.asarray(y, float) - lo) / (hi - lo)

    def _unscale(self, z: np.ndarray) -> np.ndarray:
        lo, hi = min(self.levels), max(self.levels)
        return np.asarray(z, float) * (hi - lo) + lo

    # -- sklearn contract -------------------------------------------------------------------------
    def fit(self, X: list[str], y: Any, embeddings: np.ndarray | None = None) -> FineTunedScorer:
        import torch
        from transformers import (
            AutoModelForSequenceClassification,
            DataCollatorWithPadding,
            Trainer,
            TrainingArguments,
        )
        from transformers.trainer_callback import PrinterCallback

        texts = list(X)
        yy = _check_labels(y, self.levels)
        if len(texts) != len(yy):
            raise ScorerError(f"{len(texts)} texts but {len(yy)} scores")
        if len(set(yy)) < 2:
            raise ScorerError(f"all {len(yy)} human scores are {yy[0] if len(yy) else None}: need at least two levels")
        n_val = max(MIN_VALIDATION, int(round(self.val_share * len(yy))))
        if len(yy) - n_val < 2 * MIN_VALIDATION:
            raise ScorerError(f"fine-tuning needs at least {3 * MIN_VALIDATION} scores, found {len(yy)}")
        counts = np.bincount(yy - yy.min())
        present = int((counts > 0).sum())
        strat = yy if counts[counts > 0].min() >= 2 and n_val >= present and len(yy) - n_val >= present else None
        idx_tr, idx_val = train_test_split(np.arange(len(yy)), test_size=n_val, random_state=self.random_state, stratify=strat)
        self.classes_ = np.asarray(self.levels)
        torch.manual_seed(self.random_state)
        path = str(resolve_encoder_path(self.encoder_name))
        with _quiet(self.show_progress):
            net = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=1, problem_type="regression", local_files_only=True
            )
        tok = self._tokenizer()
        train_ds = _Encoded(self._tokenise([texts[i] for i in idx_tr]), self._scale(yy[idx_tr]))
        val_ds = _Encoded(self._tokenise([texts[i] for i in idx_val]), self._scale(yy[idx_val]))
        levels = self.levels

        def val_qwk(pred: Any) -> dict[str, float]:
            z = np.asarray(pred.predictions).reshape(-1)
            guess = np.clip(np.rint(self._unscale(z)), min(levels), max(levels)).astype(int)
            truth = np.rint(self._unscale(np.asarray(pred.label_ids).reshape(-1))).astype(int)
            return {"qwk": float(cohen_kappa_score(truth, guess, weights="quadratic", labels=levels))}

        on_gpu = torch.cuda.is_available()
        with tempfile.TemporaryDirectory(prefix="finetune-") as tmp:
            args = TrainingArguments(
                output_dir=tmp,
                num_train_epochs=self.epochs,
                learning_rate=self.learning_rate,
                per_device_train_batch_size=self.batch_size,
                per_device_eval_batch_size=2 * self.batch_size,
                weight_decay=0.01,
                warmup_steps=0.1,
                eval_strategy="epoch",
                save_strategy="epoch",
                save_only_model=True,
                save_total_limit=1,
                load_best_model_at_end=True,
                metric_for_best_model="qwk",
                greater_is_better=True,
                train_sampling_strategy="group_by_length",  # less padding: the main cost on a CPU
                logging_strategy="no",
                report_to="none",
                disable_tqdm=not self.show_progress,
                use_cpu=not on_gpu,
                bf16=bool(torch.cuda.is_bf16_supported()) if on_gpu else cpu_has_native_bf16(),
                seed=self.random_state,
                dataloader_num_workers=0,
            )
            trainer = Trainer(
                model=net, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                data_collator=DataCollatorWithPadding(tok), compute_metrics=val_qwk,
            )
            if not self.show_progress:  # a batch CLI prints its own progress; keep Trainer's log lines out
                trainer.remove_callback(PrinterCallback)
            with _quiet(self.show_progress):
                trainer.train()
            self.history_ = [
                {"epoch": round(float(h["epoch"]), 2), "val_qwk": round(float(h["eval_qwk"]), 4)}
                for h in trainer.state.log_history if "eval_qwk" in h
            ]
        best: Any = trainer.model  # the best epoch's weights (load_best_model_at_end)
        net = best.float().cpu().eval()
        self.state_ = {k: v.detach().to(torch.float16).clone() for k, v in net.state_dict().items()}
        # the weights as saved (fp16): the fitted scorer, its validation figures and a reloaded one then agree
        net.load_state_dict({k: v.to(torch.float32) for k, v in self.state_.items()})
        self.config_ = net.config.to_dict()
        self._net = net
        # Spread and cut-points from the validation share only (the epoch was chosen on it too; it is small
        # and the chosen epoch is one of ``epochs``, so the optimism is limited: calibrate on held-out data).
        y_val = yy[idx_val]
        mu_val = self._predict_mu([texts[i] for i in idx_val])
        self.sigma_ = max(float(np.std(y_val - mu_val)), 0.25)
        P_val = _gaussian_proba(mu_val, self.sigma_, self.classes_)
        self.thresholds_ = fit_thresholds(P_val @ self.classes_.astype(float), y_val, self.levels) if len(self.levels) <= 15 else None
        self.val_qwk_ = float(cohen_kappa_score(y_val, self.decide(P_val), weights="quadratic", labels=self.levels))
        self.n_train_, self.n_val_ = len(idx_tr), len(idx_val)
        lengths = [len(ids) for ds in (train_ds, val_ds) for ids in ds.enc["input_ids"]]  # already tokenised
        self.truncated_share_ = float(np.mean([n >= self.max_length for n in lengths]))
        return self

    def _module(self) -> Any:
        if getattr(self, "_net", None) is None:
            import torch
            from transformers import AutoConfig, AutoModelForSequenceClassification

            config = AutoConfig.for_model(**self.config_)
            net = AutoModelForSequenceClassification.from_config(config)
            net.load_state_dict({k: v.to(torch.float32) for k, v in self.state_.items()})
            self._net = net.eval()
        return self._net

    def _predict_mu(self, texts: list[str]) -> np.ndarray:
        """Predicted scores on the criterion's scale, in batches sorted by length (less padding)."""
        import torch

        if not texts:
            return np.zeros(0)
        net, tok = self._module(), self._tokenizer()
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty(len(texts))
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_native_bf16()):
            for s in range(0, len(texts), 2 * self.batch_size):
                idx = order[s : s + 2 * self.batch_size]
                batch = tok([texts[i] for i in idx], truncation=True, max_length=self.max_length, padding=True,
                            return_tensors="pt")
                out[idx] = net(**batch).logits.float().reshape(-1).numpy()
        return self._unscale(out)

    def predict_proba(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Level probabilities (``embeddings`` is accepted for the common contract and ignored)."""
        return _gaussian_proba(self._predict_mu(list(X)), self.sigma_, self.classes_)

    def decide(self, proba: np.ndarray) -> np.ndarray:
        return decide_with_cuts(proba, self.classes_, getattr(self, "thresholds_", None))

    def predict(self, X: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.decide(self.predict_proba(X))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["encoder"] = None
        state["_net"] = None  # rebuilt from ``state_`` (fp16 weights) on first use
        state["_tok"] = None
        return state
