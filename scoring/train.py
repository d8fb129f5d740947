"""Training a scoring model for a rubric from human-scored submissions.

Per criterion: enough human scores spread over at least two levels -> a trained ensemble (with at least
``SELECT_MIN_N`` scores a ``SelectiveEnsembleScorer``, whose views and head nested cross-validation chooses
on these scores; fewer: the fixed ``EnsembleScorer``); otherwise, if every level has a descriptor or exemplars -> the cold-start scorer
(``models.coldstart.ColdStartScorer``, fitted on the file's unlabelled texts; with fewer than
``MIN_BATCH`` texts the descriptor-similarity ``ZeroShotScorer``); otherwise a ``TrainingError`` that
says how many scores exist and how many are needed.

Each version's card carries the criterion's learning curve: the previous versions' (n human scores,
cross-validated QWK) followed by this one's, so an issuer sees what each batch of scores bought.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score

from models.artifact import ScoringModel, data_hash
from models.coldstart import MIN_BATCH, ColdStartScorer
from models.encoder import Encoder
from models.finetuned import FineTunedScorer
from models.model_selection import (
    SELECT_MIN_N,
    SelectiveEnsembleScorer,
    bootstrap_interval,
    clear_selection_memos,
    config_name,
)
from models.scorers import EnsembleScorer, SharedTfidf, ZeroShotScorer
from rubrics import Criterion, Rubric
from scoring.evidence import criterion_text
from scoring.ingest import Record


class TrainingError(ValueError):
    """A criterion that can be neither trained nor scored zero-shot."""


@dataclass
class TrainingResult:
    model: ScoringModel
    metrics: dict[str, Any]
    data_hash: str


def embed_unique(encoder: Encoder, texts: list[str], show_progress: bool = False) -> np.ndarray:
    """Encode each distinct text once (criteria often read the same field), as float64.

    Why float64: a scorer's matrix products (similarities to neighbours or level prototypes, linear
    heads) run through BLAS kernels whose float32 results move by ~1e-7 with the number of rows in the
    call, enough to change a probability's sixth decimal; so a submission scored alone (the API), in a
    block of 12 (a Ray actor) or in a batch of 256 (the local engine) would get other bytes. In float64
    the same products agree to ~1e-16, far below the six decimals the outputs keep.
    """
    uniq = list(dict.fromkeys(texts))
    vecs = encoder.encode(uniq, show_progress=show_progress) if uniq else np.zeros((0, encoder.dim))
    vecs = np.asarray(vecs, dtype=np.float64)
    pos = {t: i for i, t in enumerate(uniq)}
    return vecs[[pos[t] for t in texts]] if texts else vecs


def _zero_shot(criterion: Criterion, encoder: Encoder) -> ZeroShotScorer:
    level_texts = [[lv.descriptor, *lv.exemplars] for lv in criterion.levels]
    return ZeroShotScorer(levels=criterion.scores, level_texts=level_texts, encoder=encoder).fit()


def cold_start(criterion: Criterion, texts: list[str], encoder: Encoder,
               embeddings: np.ndarray | None = None) -> tuple[ColdStartScorer | ZeroShotScorer, dict[str, Any]]:
    """The no-scores scorer of a criterion and what its card says about it.

    The cold-start scorer normalises over the unlabelled texts; below ``MIN_BATCH`` distinct texts there
    is no batch to normalise over, and the descriptor-similarity scorer is the only option (the card says so).
    """
    uniq = list(dict.fromkeys(t for t in texts if t.strip()))
    if len(uniq) >= MIN_BATCH:
        level_texts = [[lv.descriptor, *lv.exemplars] for lv in criterion.levels]
        emb = None
        if embeddings is not None:
            pos = {t: i for i, t in enumerate(texts)}
            emb = embeddings[[pos[t] for t in uniq]]
        cs = ColdStartScorer(levels=criterion.scores, level_texts=level_texts, encoder=encoder,
                             description=criterion.description).fit(uniq, embeddings=emb)  # the frequency signal matches lines to it
        about: dict[str, Any] = {"scorer": "cold-start", "assumptions": cs.describe()}
        if float(np.max(cs.signal_sd_)) < 1e-6:  # a signal with one value over the batch ranks nothing
            level = int(cs.predict(uniq[:1], embeddings=None if emb is None else emb[:1])[0])
            why = ("no line of any text matches the criterion's description above the batch's "
                   f"{cs.frequency_quantile:.0%} quantile of line matches (the closest lines tie there): reword its "
                   "`description` as the move in the words it is said in" if cs.signals_ == ("frequency",)
                   else "its signals take one value over the whole file")
            about["flat"] = {"level": level, "why": why}
        return cs, about
    return _zero_shot(criterion, encoder), {
        "scorer": "zero-shot",
        "why_not_cold_start": f"{len(uniq)} distinct texts < {MIN_BATCH}: no batch to normalise over; "
                              "descriptor similarity only (uncalibrated)",
    }


OFF_SCALE_MAX_SHARE = 0.01  # more off-scale cells than this share (and at least 5): the rubric does not fit the data


def check_label_columns(records: list[Record], columns: dict[str, str], explicit: bool,
                        levels: dict[str, list[int]] | None = None) -> None:
    """A score column none of whose cells is usable is a mistake (wrong column, wrong scale), not a cold start.

    Raises ``TrainingError`` naming the column and its first bad values. A column the user named
    (``explicit``) that is entirely blank is refused too: leaving ``--score-col`` out is how to ask for
    the cold-start model. So is a column where whole numbers outside the rubric's scale are not a stray
    typo but a pattern (at least 5 cells and more than 1% of its scores): a 0-4 column read against a
    1-3 rubric would otherwise train on the middle of the scale only, with both ends silently dropped.
    """
    usable = [r for r in records if r.reject is None]
    for crit, col in columns.items():
        off = Counter(r.off_scale[crit] for r in usable if crit in r.off_scale)
        n_off = sum(off.values())
        n_scored = n_off + sum(1 for r in usable if r.scores.get(crit) is not None)
        if n_off >= 5 and n_off > OFF_SCALE_MAX_SHARE * n_scored:
            seen = ", ".join(f"{v} in {k} cell(s)" for v, k in sorted(off.items()))
            raise TrainingError(
                f"score column {col!r} (criterion {crit!r}): {n_off} of {n_scored} scores are outside the rubric "
                f"scale{'' if levels is None else ' ' + str(levels.get(crit))}: {seen}. Is this the rubric for "
                "this data? Fix the criterion's levels in the rubric (and bump its version), or keep only the "
                "rows you mean to train on with --where")
        if any(r.scores.get(crit) is not None for r in usable):
            continue
        bad = [r.score_problems[crit] for r in usable if crit in r.score_problems]
        if bad:
            raise TrainingError(
                f"score column {col!r} (criterion {crit!r}) has no usable score: {len(bad)} cell(s) are unusable, "
                f"the first: {'; '.join(bad[:3])}. Map the right column with --score-col {crit}=COLUMN"
            )
        if explicit and usable:
            raise TrainingError(
                f"score column {col!r} (criterion {crit!r}) is empty in all {len(usable)} rows; to build the "
                "cold-start model without human scores, leave --score-col out"
            )


def learning_curve(previous: dict[str, Any] | None, metrics: dict[str, Any], version: str) -> dict[str, list[dict[str, Any]]]:
    """Per criterion: earlier versions' (n scores, QWK) points from the previous card, then this version's."""
    old = (previous or {}).get("learning_curve", {}) if isinstance(previous, dict) else {}
    curve: dict[str, list[dict[str, Any]]] = {}
    for cid, m in metrics.items():
        if cid.startswith("_"):
            continue
        points = [p for p in old.get(cid, []) if isinstance(p, dict)]
        qwk = m.get("cv_qwk", m.get("val_qwk", m.get("qwk_on_available_scores")))
        points.append({"model_version": version, "n_scored": m.get("n_scored", 0), "scorer": m.get("scorer"),
                       "qwk": qwk, "qwk_kind": ("cross-validated" if "cv_qwk" in m else "validation" if "val_qwk" in m
                                                else "on the available scores" if qwk is not None else None)})
        curve[cid] = points
    return curve


def cv_figure(m: dict[str, Any]) -> str:
    """What ``scoring train`` prints for a trained criterion: the configuration and its cross-validated QWK."""
    if "cv_qwk_interval95" in m:
        lo, hi = m["cv_qwk_interval95"]
        kind = "nested-CV" if str(m.get("cv_kind", "nested")).startswith("nested") else "cv"
        return (f"{m.get('configuration', '')}: {kind} QWK {m['cv_qwk']:.3f} [95% {lo:.3f}-{hi:.3f}]"
                + (f", {m['train_s']:.0f}s" if "train_s" in m else ""))
    return f"{m['configuration'] + ': ' if 'configuration' in m else ''}cv QWK {m['cv_qwk']:.3f}"


def _untrained_figure(m: dict[str, Any]) -> str:
    """What a criterion scored from its descriptors says: with a few human scores, that they were too few to
    train on (not "none"), and how the descriptors did on them."""
    n = int(m.get("n_scored") or 0)
    flat = m.get("flat")
    warn = (f"; warning: it gives every submission of the file level {flat['level']}, ranking nothing: {flat['why']}"
            if isinstance(flat, dict) else "")
    if not n:
        return "no human scores: the default policy routes every item to people" + warn
    q = m.get("qwk_on_available_scores")
    return (f"{n} human score(s), too few to train on (see --min-labelled): scored from the level descriptors"
            + (f", QWK {q:.3f} on those {n}" if isinstance(q, (int, float)) else "")
            + "; the default policy routes every item to people" + warn)


def criterion_line(cid: str, m: dict[str, Any]) -> str:
    """One criterion of a model card in words, as ``scoring train`` prints it and ``scoring models list``
    lists it: its scorer, how many human scores, and its agreement with what kind of figure it is."""
    figure = (cv_figure(m) if "cv_qwk" in m
              else f"validation QWK {m['val_qwk']:.3f} (n={m['n_val']}; optimistic: the same items chose the "
              "epoch and cut-points)" if "val_qwk" in m
              else _untrained_figure(m) if m.get("scorer") in ("cold-start", "zero-shot") else "")
    return f"{cid}: {m.get('scorer')}, n={m.get('n_scored', 0)}, {figure}"


@dataclass(frozen=True)
class FineTuning:
    """When and how criteria are fine-tuned (``scoring train --scorer finetuned``)."""

    min_scores: int = 300
    epochs: int = 4
    max_length: int = 512


def fine_tuning_for(kind: str, settings: Any) -> FineTuning | None:
    """The fine-tuning plan for ``--scorer KIND`` (None: the ensemble), from ``scoring.settings.Settings``."""
    if kind not in ("ensemble", "finetuned"):
        raise ValueError(f"expected ensemble or finetuned, found {kind!r}")
    if kind == "ensemble":
        return None
    return FineTuning(settings.finetune_min_scores, settings.finetune_epochs, settings.finetune_max_length)


def train_model(
    rubric: Rubric,
    records: list[Record],
    encoder: Encoder,
    min_labelled: int = 30,
    show_progress: bool = False,
    seed: int = 13,
    finetune: FineTuning | None = None,
    select: bool = True,
) -> TrainingResult:
    """Fit one scorer per criterion; returns the model, per-criterion metrics and the data hash.

    With ``finetune``, a criterion with at least ``finetune.min_scores`` human scores gets a fine-tuned
    transformer instead of the ensemble (the metrics say which, and why not where it fell back).
    With ``select`` (default), a criterion with at least ``SELECT_MIN_N`` scores gets the views and head
    its own nested cross-validation chooses (``SelectiveEnsembleScorer``); fewer keep the fixed ensemble.
    """
    try:
        return _train_criteria(rubric, records, encoder, min_labelled, show_progress, seed, finetune, select)
    finally:
        clear_selection_memos()  # features shared between this run's criteria outlive it neither on success nor error


def _train_criteria(rubric: Rubric, records: list[Record], encoder: Encoder, min_labelled: int, show_progress: bool,
                    seed: int, finetune: FineTuning | None, select: bool) -> TrainingResult:
    usable = [r for r in records if r.reject is None]
    texts_by_crit: dict[str, list[str]] = {}
    labels_by_crit: dict[str, list[int]] = {}
    unlabelled_by_crit: dict[str, list[str]] = {}  # every text of the criterion: the cold start's batch
    for c in rubric.criteria:
        all_pairs = [(criterion_text(rubric, c, r.evidence), r.scores.get(c.id)) for r in usable]
        pairs = [(t, y) for t, y in all_pairs if y is not None and t.strip()]
        texts_by_crit[c.id] = [t for t, _ in pairs]
        labels_by_crit[c.id] = [int(y) for _, y in pairs]  # type: ignore[arg-type]
        unlabelled_by_crit[c.id] = [t for t, _ in all_pairs if t.strip()]
    all_texts = [t for ts in texts_by_crit.values() for t in ts]
    emb_all = embed_unique(encoder, all_texts, show_progress=show_progress)
    # One TF-IDF view per distinct evidence selection, shared by the criteria reading it.
    shared: dict[tuple[str, ...], SharedTfidf] = {}
    for c in rubric.criteria:
        spec = rubric.evidence_for(c)
        if spec not in shared and len(texts_by_crit[c.id]) >= min_labelled:
            union = list(dict.fromkeys(t for c2 in rubric.criteria if rubric.evidence_for(c2) == spec for t in texts_by_crit[c2.id]))
            shared[spec] = SharedTfidf.fit(union)
    scorers: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    offset = 0
    for c in rubric.criteria:
        texts, y = texts_by_crit[c.id], labels_by_crit[c.id]
        emb = emb_all[offset : offset + len(texts)]
        offset += len(texts)
        counts = Counter(y)
        m: dict[str, Any] = {"n_scored": len(y), "level_counts": {str(k): counts.get(k, 0) for k in c.scores}}
        if finetune is not None and len(y) >= finetune.min_scores and len(counts) >= 2:
            scorer = FineTunedScorer(levels=c.scores, encoder_name=encoder.name, epochs=finetune.epochs,
                                     max_length=finetune.max_length, random_state=seed, show_progress=show_progress)
            scorer.fit(texts, np.asarray(y))
            m.update(scorer="finetuned", val_qwk=round(scorer.val_qwk_, 4), n_val=scorer.n_val_,
                     val_note="optimistic: the validation items also chose the epoch and the cut-points",
                     epochs=scorer.history_, truncated_share=round(scorer.truncated_share_, 4))
        elif len(y) >= min_labelled and len(counts) >= 2:
            if finetune is not None:
                m["why_not_finetuned"] = f"{len(y)} human scores < {finetune.min_scores}: the ensemble instead"
            t_fit = time.perf_counter()
            if select and len(y) >= SELECT_MIN_N:  # nested-CV choice of views and head (models.model_selection)
                sel = SelectiveEnsembleScorer(levels=c.scores, encoder=encoder, random_state=seed,
                                              shared_tfidf=shared.get(rubric.evidence_for(c)))
                sel.fit(texts, np.asarray(y), embeddings=emb)
                nested: dict[str, Any] = sel.selection_["nested_cv"]
                m.update(scorer="trained", cv_qwk=nested["qwk"], cv_qwk_interval95=nested["interval95"],
                         cv_exact=nested["exact"], cv_kind="nested (the outer folds never chose the configuration)",
                         configuration=config_name(sel.chosen_views_, sel.head_kind_), selection=sel.selection_)
                scorer = sel
            else:
                scorer = EnsembleScorer(levels=c.scores, encoder=encoder, random_state=seed,
                                        shared_tfidf=shared.get(rubric.evidence_for(c)))
                scorer.fit(texts, np.asarray(y), embeddings=emb)
                held = scorer.held_out_predict()  # head and cut-points refitted without each fold
                lo, hi = bootstrap_interval(np.asarray(y), held, list(c.scores))
                m.update(
                    scorer="trained",
                    cv_qwk=round(float(cohen_kappa_score(y, held, weights="quadratic", labels=c.scores)), 4),
                    cv_qwk_interval95=[round(lo, 4), round(hi, 4)],
                    cv_exact=round(float(np.mean(held == np.asarray(y))), 4),
                    cv_kind="cross-validated (views, head and cut-points fitted without each text's fold)",
                    configuration=("embed+tfidf" if scorer.tfidf_ is not None else "embed")
                    + ("+kernel" if scorer.kernel_view else "") + " / " + scorer.head_kind_,
                    why_no_selection=(f"{len(y)} human scores < {SELECT_MIN_N}: the fixed ensemble, nothing chosen"
                                      if select else "selection off"),
                )
            m["train_s"] = round(time.perf_counter() - t_fit, 2)
        elif c.has_descriptors:
            batch = unlabelled_by_crit[c.id]
            scorer, about = cold_start(c, batch, encoder, embed_unique(encoder, batch) if batch else None)
            m.update(about)
            if y:
                pred = scorer.decide(scorer.predict_proba(texts, embeddings=emb))
                m["qwk_on_available_scores"] = round(float(cohen_kappa_score(y, pred, weights="quadratic", labels=c.scores)), 4)
            m["why"] = (f"{len(y)} human scores over {len(counts)} level(s) (< {min_labelled} or < 2 levels): "
                        f"{m['scorer']} from the level descriptors; route its scores to people until there are scores")
        else:
            raise TrainingError(
                f"criterion {c.id!r}: {len(y)} human scores over {len(counts)} level(s); need at least {min_labelled} "
                "over 2+ levels to train, or a descriptor/exemplar on every level for the zero-shot scorer"
            )
        scorers[c.id] = scorer
        metrics[c.id] = m
    ids = [r.id or "" for r in usable]
    joined = ["\x1e".join(f"{k}={v}" for k, v in sorted(r.evidence.items())) for r in usable]
    h = data_hash(ids, joined, {c.id: [r.scores.get(c.id) for r in usable] for c in rubric.criteria})
    model = ScoringModel(rubric=rubric, scorers=scorers, encoder=encoder, card={"encoder_name": encoder.name})
    return TrainingResult(model=model, metrics=metrics, data_hash=h)
