"""Reader for the ASAP-AES release (research data read from a path the user gives; never bundled).

The TSV must be parsed with quoting off: most essays are wrapped in double quotes with ``""`` escapes
and a few open a quote they never close, so default CSV quoting silently merges rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# Sets whose resolved score is the sum of the two raters' scores (the rest take essentially the higher).
SUM_SETS = {1, 7, 8}
TRAITS = {7: 4, 8: 6}


@dataclass(frozen=True)
class AsapSplit:
    train: pd.DataFrame
    test: pd.DataFrame


def rater_multiplier(essay_set: int, criterion: str) -> int:
    """What one rater's score is multiplied by to stand on the machine's scale for this set and criterion.

    2 for the holistic score of the sets whose score of record is the SUM of the two raters (a rater then
    covers half the machine's scale); 1 elsewhere (traits, and sets resolved to the higher of the two)."""
    return 2 if criterion == "holistic" and essay_set in SUM_SETS else 1


def _unwrap(text: str) -> str:
    t = text.strip()
    if len(t) >= 2 and t[0] == '"' and t[-1] == '"':
        t = t[1:-1]
    elif t.startswith('"'):
        t = t[1:]
    return t.replace('""', '"').strip()


def load_asap(data_dir: str | Path) -> pd.DataFrame:
    """All essays with integer score columns (NaN where a column does not apply)."""
    path = Path(data_dir) / "training_set_rel3.tsv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: pass --data-dir pointing at the asap_aes folder")
    df = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8", dtype=str, keep_default_na=False)
    df["essay"] = df["essay"].map(_unwrap)
    for c in df.columns:
        if c not in ("essay",):
            df[c] = pd.to_numeric(df[c].replace("", None), errors="coerce")
    df["essay_id"] = df["essay_id"].astype(int)
    df["essay_set"] = df["essay_set"].astype(int)
    return df


def fold_split(df: pd.DataFrame, data_dir: str | Path, fold: int = 0) -> AsapSplit:
    ids = {int(x) for x in (Path(data_dir) / f"fold_{fold}" / "test_ids.txt").read_text().split()}
    mask = df["essay_id"].isin(ids)
    return AsapSplit(train=df[~mask].reset_index(drop=True), test=df[mask].reset_index(drop=True))
