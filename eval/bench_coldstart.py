"""``scoring bench coldstart``: a new rubric with no scores, then the first human scores.

What it measures, so the printed figures can be traced:

1. Zero-shot. Per ASAP-AES essay set, the organisers' own rubric text (``essay_set_descriptions/``) gives
   the level descriptors. The cold-start scorer (``models.coldstart``) is fitted on the set's essays
   *without scores* (the backlog: training and test ids alike, transductively, as on day one) and
   scores the fold-0 test ids. Next to it, the obvious peer: TF-IDF cosine between each essay and the
   rubric text, min-max scaled over the batch onto the scale and rounded. Also printed: the same cosine
   mapped through the scorer's prior (``peer_prior_qwk``, isolating the prior from the signal), the
   descriptors-only cold-start scorer, and the old softmax-over-similarities ``ZeroShotScorer``.
   ``zeroshot_minus_peer_ci``: 95% percentile bootstrap of the mean-over-sets QWK difference,
   resampling test essays within each set (1000 resamples, seed 0). Level distributions (shares) of
   the scorer, the peer and the humans on the test ids.
2. Learning curves. The pool is the fold-0 training ids (unscored backlog); after n human scores
   (n in ``--ns``) a light head (``light_head``: ridge on the frozen embedding, surface features and
   the cold-start blend, penalty by leave-one-out on the scored texts only) scores the test ids. The
   n texts are the first n of ``scoring select``'s queue (``scoring.selection``, started with the
   seed) or n drawn at random, 5 seeds each; mean and sd per n. ``scores_to_match_random_200``: the
   smallest n on the grid where selection's mean QWK reaches random's at 200 (null if none).
3. ``--dev``: the same on the training ids only (80% pool, 20% held out, seed 0), for every design
   choice; the test ids are then never read. ``--dev-splits K`` repeats it on K such splits (seeds 0..K-1)
   and averages the curves over them: the selection's queue is deterministic, so on one split its curve is
   one draw, and a design choice that wins on one split can lose on the next (``*_qwk_split_sd``: the sd of
   the mean-over-criteria curve across splits). ``--design-n`` sets the selection's design phase length
   (``scoring.selection.DESIGN_N`` by default), so the choice of that length can be reproduced.

Criteria: sets 2-6 the resolved domain-1 score; set 1 the resolved score halved (rounded half up) onto
the single rater's 1-6 scale of its rubric; sets 7 and 8 trait 1 (Ideas / Ideas and content, rater 1,
the only trait score both raters give), with that trait's rubric text. QWK uses the full scale.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import RidgeCV
from sklearn.metrics import cohen_kappa_score
from sklearn.preprocessing import StandardScaler

from models.coldstart import ColdStartScorer
from models.features import surface_features
from models.scorers import ZeroShotScorer
from scoring.selection import DESIGN_N, select

NS = (10, 20, 30, 50, 75, 100, 150, 200)
SEEDS = (0, 1, 2, 3, 4)
_SCORE = re.compile(r"^\s*Score(?: Point)?\s+(\d+)\s*:\s*(.*)$")
_STOP = ("Adjudication", "NOTE", "Rubric Guidelines", "Scores summed", "For the specific", "Standard Rule")


@dataclass
class Criterion:
    """One benchmark criterion: texts, human levels, the scale and the level descriptors."""

    name: str
    texts: list[str]
    y: np.ndarray
    is_test: np.ndarray
    levels: list[int]
    descriptors: list[str]
    description: str = ""  # the criterion's own "look-for" sentence, where the rubric has one


def rubric_descriptors(desc_dir: Path, essay_set: int) -> dict[int, str]:
    """Level -> the organisers' rubric text for that level (the first trait's rubric where there are several)."""
    path = desc_dir / f"Essay Set #{essay_set}--ReadMeFirst.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("Rubric Guidelines")), None)
    if start is None:
        raise ValueError(f"{path}: no 'Rubric Guidelines' section")
    blocks: dict[int, list[str]] = {}
    cur: int | None = None
    for line in lines[start + 1 :]:
        m = _SCORE.match(line)
        if m:
            k = int(m.group(1))
            if k in blocks:  # the next trait's rubric starts
                break
            cur = k
            blocks[k] = [m.group(2).strip()]
        elif cur is not None and line.strip():
            if line.strip().startswith(_STOP) or line.strip() in {"Organization", "Style", "Conventions"}:
                cur = None
                continue
            blocks[cur].append(line.strip())
    return {k: " ".join(v) for k, v in sorted(blocks.items())}


def asap_criteria(data_dir: Path, sets: list[int], dev: bool, dev_seed: int = 0) -> list[Criterion]:
    from eval.asap import load_asap

    df = load_asap(data_dir)
    test_ids = {int(x) for x in (data_dir / "fold_0" / "test_ids.txt").read_text().split()}
    out = []
    for s in sets:
        d = df[df.essay_set == s].reset_index(drop=True)
        if s == 1:
            y = np.floor(d["domain1_score"].to_numpy(float) / 2 + 0.5)
        elif s in (7, 8):
            y = d["rater1_trait1"].to_numpy(float)
        else:
            y = d["domain1_score"].to_numpy(float)
        is_test = d["essay_id"].isin(test_ids).to_numpy()
        keep = ~np.isnan(y)
        if dev:  # training ids only: 20% of them play the test ids
            keep &= ~is_test
            rng = np.random.default_rng(dev_seed)
            is_test = rng.random(len(d)) < 0.2
        desc = rubric_descriptors(data_dir / "essay_set_descriptions", s)
        levels = sorted(desc)
        out.append(Criterion(f"asap-set{s}", [d.essay[i] for i in np.flatnonzero(keep)], y[keep].astype(int),
                             is_test[keep], levels, [desc[k] for k in levels]))
    return out


def qwk(a: Any, b: Any, levels: list[int]) -> float:
    return float(cohen_kappa_score(np.asarray(a, int), np.asarray(b, int), weights="quadratic", labels=levels))


def shares(v: np.ndarray, levels: list[int]) -> list[float]:
    return [round(float(np.mean(np.asarray(v) == lv)), 3) for lv in levels]


def peer_scores(texts: list[str], descriptors: list[str]) -> np.ndarray:
    """TF-IDF cosine of each text to the rubric's descriptors (one document)."""
    rubric = " ".join(descriptors)
    vec = TfidfVectorizer(sublinear_tf=True).fit([*texts, rubric])
    return (vec.transform(texts) @ vec.transform([rubric]).T).toarray().ravel()


def scale_to_range(v: np.ndarray, levels: list[int]) -> np.ndarray:
    lo, hi = min(levels), max(levels)
    span = float(v.max() - v.min()) or 1.0
    return np.clip(np.rint(lo + (v - v.min()) / span * (hi - lo)), lo, hi).astype(int)


def by_prior(v: np.ndarray, prior: np.ndarray, levels: list[int]) -> np.ndarray:
    """Split a batch by rank in the prior's proportions."""
    ranks = np.argsort(np.argsort(v, kind="stable"), kind="stable") / max(len(v), 1)
    return np.asarray(levels)[np.searchsorted(np.cumsum(prior)[:-1], ranks, side="right")]


def light_head(F: np.ndarray, y: np.ndarray, levels: list[int], t_col: int = -1) -> Callable[[np.ndarray], np.ndarray]:
    """Two stages, so a handful of scores already helps: (1) a straight line from the cold-start blend
    (column ``t_col``) to the human levels, two numbers any n >= 2 pins down; (2) ridge on the
    standardised features for what the line misses, penalty by leave-one-out on the scored texts only.
    Rounded onto the scale."""
    t = F[:, t_col]
    A = np.column_stack([np.ones(len(t)), t])
    coef = np.linalg.lstsq(A, y.astype(float), rcond=None)[0]
    resid = y - A @ coef
    scaler = StandardScaler().fit(F)
    model = RidgeCV(alphas=np.logspace(0, 5, 16)).fit(scaler.transform(F), resid)
    lo, hi = min(levels), max(levels)

    def predict(G: np.ndarray) -> np.ndarray:
        base = coef[0] + coef[1] * G[:, t_col]
        return np.clip(np.rint(base + model.predict(scaler.transform(G))), lo, hi).astype(int)

    return predict


def bootstrap_diff(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]], B: int = 1000) -> list[float]:
    """95% interval of mean-over-criteria QWK(a) - QWK(b), resampling items within each criterion."""
    rng = np.random.default_rng(0)
    diffs = np.empty(B)
    for b in range(B):
        d = []
        for y, a, p, levels in rows:
            i = rng.integers(0, len(y), len(y))
            d.append(qwk(a[i], y[i], levels) - qwk(p[i], y[i], levels))
        diffs[b] = np.mean(d)
    return [round(float(np.quantile(diffs, 0.025)), 4), round(float(np.quantile(diffs, 0.975)), 4)]


def evaluate(crit: Criterion, encode: Callable[[list[str]], np.ndarray], ns: tuple[int, ...] = NS,
             seeds: tuple[int, ...] = SEEDS, echo: Callable[[str], None] = print,
             selector: Callable[..., list[Any]] = select) -> dict[str, Any]:
    """Zero-shot vs peer, then learning curves, for one criterion."""

    class _Enc:  # the scorers encode descriptors through this; the texts' embeddings are passed in
        def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
            return encode(texts)

    E = encode(crit.texts)
    lv, test = crit.levels, crit.is_test
    y = crit.y
    level_texts = [[d] for d in crit.descriptors]
    cs = ColdStartScorer(levels=lv, level_texts=level_texts, encoder=_Enc(), description=crit.description).fit(
        crit.texts, embeddings=E)
    pred = cs.predict([crit.texts[i] for i in np.flatnonzero(test)], embeddings=E[test])
    desc_only = ColdStartScorer(levels=lv, level_texts=level_texts, encoder=_Enc(), signals=("descriptors",)).fit(
        crit.texts, embeddings=E)
    pred_desc = desc_only.predict([crit.texts[i] for i in np.flatnonzero(test)], embeddings=E[test])
    zs = ZeroShotScorer(levels=lv, level_texts=level_texts, encoder=_Enc()).fit()
    pred_old = zs.predict([crit.texts[i] for i in np.flatnonzero(test)], embeddings=E[test])
    cos = peer_scores(crit.texts, crit.descriptors)
    peer = scale_to_range(cos, lv)[test]
    peer_prior = by_prior(cos, cs.prior_, lv)[test]
    yt = y[test]
    row: dict[str, Any] = {
        "criterion": crit.name, "n_test": int(test.sum()), "n_pool": int((~test).sum()), "levels": lv,
        "zeroshot_qwk": round(qwk(pred, yt, lv), 4), "peer_qwk": round(qwk(peer, yt, lv), 4),
        "peer_prior_qwk": round(qwk(peer_prior, yt, lv), 4),
        "descriptors_only_qwk": round(qwk(pred_desc, yt, lv), 4),
        "softmax_zeroshot_qwk": round(qwk(pred_old, yt, lv), 4),
        "shares_human": shares(yt, lv), "shares_zeroshot": shares(pred, lv), "shares_peer": shares(peer, lv),
        "shares_softmax_zeroshot": shares(pred_old, lv), "signal_weights": cs.describe()["signals"],
    }
    echo(f"{crit.name}: zero-shot QWK {row['zeroshot_qwk']:.3f} (descriptors only {row['descriptors_only_qwk']:.3f}, "
         f"softmax {row['softmax_zeroshot_qwk']:.3f}) vs peer {row['peer_qwk']:.3f} (prior-mapped "
         f"{row['peer_prior_qwk']:.3f}); shares human {row['shares_human']} zero-shot {row['shares_zeroshot']}")
    # learning curves
    pool = np.flatnonzero(~test)
    surf = surface_features(crit.texts)
    t = cs.blend(crit.texts, embeddings=E)
    F = np.hstack([E, surf, t[:, None]])
    P_pool = cs.predict_proba([crit.texts[i] for i in pool], embeddings=E[pool])
    curves: dict[str, dict[int, list[float]]] = {"active": {n: [] for n in ns}, "random": {n: [] for n in ns}}
    top = max(ns)
    for seed in seeds:
        picks = [pool[p.row] for p in selector(E[pool], P_pool, cs.classes_, top, seed=seed)]
        rand = np.random.default_rng(seed).permutation(pool)[:top]
        for kind, order in (("active", np.asarray(picks)), ("random", rand)):
            for n in ns:
                chosen = order[:n]
                if len(set(y[chosen])) < 2:  # one level only: nothing to fit; the cold start stands
                    curves[kind][n].append(row["zeroshot_qwk"])
                    continue
                head = light_head(F[chosen], y[chosen], lv)
                curves[kind][n].append(qwk(head(F[test]), yt, lv))
    for kind in curves:
        row[f"{kind}_qwk_at"] = {n: round(float(np.mean(v)), 4) for n, v in curves[kind].items()}
        row[f"{kind}_qwk_sd"] = {n: round(float(np.std(v)), 4) for n, v in curves[kind].items()}
    echo(f"  active {row['active_qwk_at']}\n  random {row['random_qwk_at']}")
    row["_test"] = (yt, pred, peer, lv)
    return row


def summarise(rows: list[dict[str, Any]], ns: tuple[int, ...] = NS) -> dict[str, Any]:
    out: dict[str, Any] = {
        "zeroshot_qwk_mean": round(float(np.mean([r["zeroshot_qwk"] for r in rows])), 4),
        "peer_qwk_mean": round(float(np.mean([r["peer_qwk"] for r in rows])), 4),
        "peer_prior_qwk_mean": round(float(np.mean([r["peer_prior_qwk"] for r in rows])), 4),
        "descriptors_only_qwk_mean": round(float(np.mean([r["descriptors_only_qwk"] for r in rows])), 4),
        "softmax_zeroshot_qwk_mean": round(float(np.mean([r["softmax_zeroshot_qwk"] for r in rows])), 4),
        "zeroshot_minus_peer_ci": bootstrap_diff([r["_test"] for r in rows]),
        # share of the two top levels, mean over criteria: does a scorer pile work at the top?
        "top_two_share": {k: round(float(np.mean([sum(r[f"shares_{k}"][-2:]) for r in rows])), 4)
                          for k in ("human", "zeroshot", "softmax_zeroshot", "peer")},
    }
    for kind in ("active", "random"):
        out[f"{kind}_qwk_at"] = {n: round(float(np.mean([r[f"{kind}_qwk_at"][n] for r in rows])), 4) for n in ns}
        # spread: sd over seeds of the mean-over-criteria curve is not separable; report the mean per-criterion sd
        out[f"{kind}_qwk_sd"] = {n: round(float(np.mean([r[f"{kind}_qwk_sd"][n] for r in rows])), 4) for n in ns}
    target = out["random_qwk_at"][max(ns)]  # 200 on the default grid
    out["scores_to_match_random_200"] = next((n for n in ns if out["active_qwk_at"][n] >= target), None)
    return out


def dev_splits_problem(dev_splits: int, dev: bool, talkmoves: bool) -> str | None:
    """Why ``dev_splits`` cannot be run with these options, or None (the command asks before loading the encoder)."""
    if dev_splits < 1:
        return f"expected at least one dev split, found {dev_splits}"
    if dev_splits > 1 and (not dev or talkmoves):
        return "--dev-splits needs --dev and --data-dir (ASAP-AES): the test split is one split"
    return None


def run(data_dir: Path | None, talkmoves_dir: Path | None, encode: Callable[[list[str]], np.ndarray],
        sets: list[int], dev: bool = False, ns: tuple[int, ...] = NS, seeds: tuple[int, ...] = SEEDS,
        echo: Callable[[str], None] = print, max_lessons: int | None = None, dev_splits: int = 1,
        design_n: int = DESIGN_N) -> dict[str, Any]:
    """Every criterion of the chosen data; the summary dict (the command prints it as the last line).

    With ``dev`` and ``dev_splits`` > 1 (ASAP-AES only): the dev protocol on that many splits of the training
    ids, the curves averaged over the splits (see the module docstring)."""
    problem = dev_splits_problem(dev_splits, dev, talkmoves_dir is not None)
    if problem:
        raise ValueError(problem)
    selector = partial(select, design_n=design_n)
    outs = []
    for split in range(dev_splits):
        if dev_splits > 1:
            echo(f"# dev split {split + 1} of {dev_splits} (seed {split})")
        outs.append(_run_split(data_dir, talkmoves_dir, encode, sets, dev, ns, seeds, echo, max_lessons, split,
                               selector))
    out = outs[0] if dev_splits == 1 else _average_splits(outs)
    out["design_n"] = design_n
    return out


def _run_split(data_dir: Path | None, talkmoves_dir: Path | None, encode: Callable[[list[str]], np.ndarray],
               sets: list[int], dev: bool, ns: tuple[int, ...], seeds: tuple[int, ...], echo: Callable[[str], None],
               max_lessons: int | None, dev_seed: int, selector: Callable[..., list[Any]]) -> dict[str, Any]:
    crits: list[Criterion] = []
    if data_dir is not None:
        crits += asap_criteria(Path(data_dir), sets, dev, dev_seed)
    if talkmoves_dir is not None:
        from eval.coldstart_talkmoves import talkmoves_criterion

        crits.append(talkmoves_criterion(Path(talkmoves_dir), dev, max_lessons=max_lessons))
    if not crits:
        raise ValueError("expected --data-dir (ASAP-AES) or --talkmoves, found neither")
    smallest = min(int((~c.is_test).sum()) for c in crits)
    if any(n > smallest for n in ns):
        ns = tuple(n for n in ns if n <= smallest)
        echo(f"note: the smallest pool holds {smallest} texts; learning curves stop at n={max(ns, default=0)}")
    if not ns:
        raise ValueError(f"the smallest pool holds {smallest} texts: too few for a learning curve (the grid starts at 10)")
    rows = [evaluate(c, encode, ns, seeds, echo, selector=selector) for c in crits]
    out = summarise(rows, ns)
    out["random_reference_n"] = max(ns)
    out["per_criterion"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    held_out = "test lessons (seed 13, 20%)" if talkmoves_dir is not None else "fold-0 test ids"
    out["split"] = (f"dev: training only, 20% held out (seed {dev_seed})" if dev else held_out)
    out["ns"] = list(ns)
    out["seeds"] = len(seeds)
    return out


def _average_splits(outs: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary from several dev splits: the zero-shot and peer means and the learning curves averaged over
    the splits, the curves' sd across splits, ``scores_to_match_random_200`` recomputed on the averaged curves
    and kept per split, and each split's own summary under ``splits`` (per criterion, intervals, shares)."""
    ns = [n for n in outs[0]["ns"] if all(n in o["ns"] for o in outs)]
    out: dict[str, Any] = {k: round(float(np.mean([o[k] for o in outs])), 4)
                           for k in ("zeroshot_qwk_mean", "peer_qwk_mean", "peer_prior_qwk_mean",
                                     "descriptors_only_qwk_mean", "softmax_zeroshot_qwk_mean")}
    for kind in ("active", "random"):
        out[f"{kind}_qwk_at"] = {n: round(float(np.mean([o[f"{kind}_qwk_at"][n] for o in outs])), 4) for n in ns}
        out[f"{kind}_qwk_split_sd"] = {n: round(float(np.std([o[f"{kind}_qwk_at"][n] for o in outs])), 4) for n in ns}
    target = out["random_qwk_at"][max(ns)]
    out["scores_to_match_random_200"] = next((n for n in ns if out["active_qwk_at"][n] >= target), None)
    out["scores_to_match_per_split"] = [o["scores_to_match_random_200"] for o in outs]
    out["random_reference_n"] = max(ns)
    out["split"] = f"dev: training only, 20% held out, mean over {len(outs)} splits (seeds 0-{len(outs) - 1})"
    out["ns"] = ns
    out["seeds"] = outs[0]["seeds"]
    out["dev_splits"] = len(outs)
    out["splits"] = outs
    return out
