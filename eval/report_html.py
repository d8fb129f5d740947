"""HTML tables of the report that fit the page: key columns merged into one sticky first column, an estimate
and its interval in one cell, long text wrapped, and wide tables split into parts that each repeat the keys
(so nothing hides off-screen in the browser or off the paper in print)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from markupsafe import Markup, escape

PAGE_PX = 1060  # width a table part may take (the body is 1150 px; print is A4 landscape)
KEY_PX = 300  # the merged key column (wraps)
CHAR_PX = 5.9  # 12 px system font, average character (digits are narrower still)
WRAP_CHARS = 28  # strings longer than this wrap in a cell of at most this width
KEYS = ("rubric_id", "rubric_version", "criterion", "model_version", "window", "field", "group", "pair", "analysis")


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.3f}"
    return str(v)


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def display_columns(columns: Sequence[str]) -> list[str]:
    """Columns as shown: ``x_lo`` / ``x_hi`` fold into ``x``'s cell."""
    cols = set(columns)
    return [c for c in columns if not ((c.endswith("_lo") and c[:-3] in cols) or (c.endswith("_hi") and c[:-3] in cols))]


MISSING = {"dsm": "n/a", "prmse": "n/a", "qwk": "n/a"}  # where an empty cell would read as "no difference"


def _cell(row: dict[str, Any], c: str, columns: set[str]) -> tuple[str, bool]:
    v = row.get(c)
    text = fmt(v)
    if text == "" and c in MISSING:
        return MISSING[c], True
    if f"{c}_lo" in columns and not _is_missing(row.get(f"{c}_lo")) and not _is_missing(v):
        text += f" [{fmt(row[f'{c}_lo'])}, {fmt(row[f'{c}_hi'])}]"
    return text, isinstance(v, str)


def _width(df: pd.DataFrame, c: str, columns: set[str], rows: list[dict[str, Any]]) -> float:
    longest = max([len(c)] + [len(_cell(r, c, columns)[0]) for r in rows[:200]])
    return min(longest, WRAP_CHARS) * CHAR_PX + 14


def split_parts(df: pd.DataFrame, keys: list[str], budget: float = PAGE_PX - KEY_PX) -> list[list[str]]:
    """Greedy packing of the non-key columns into parts no wider than ``budget`` px."""
    columns = set(df.columns)
    rows = df.to_dict(orient="records")
    parts: list[list[str]] = [[]]
    used = 0.0
    for c in display_columns([c for c in df.columns if c not in keys]):
        w = _width(df, c, columns, rows)
        if parts[-1] and used + w > budget:
            parts.append([])
            used = 0.0
        parts[-1].append(c)
        used += w
    return [p for p in parts if p]


def _key_html(row: dict[str, Any], keys: list[str]) -> str:
    vals = []
    for k in keys:
        v = row.get(k)
        if _is_missing(v) or v == "":
            continue
        if k == "rubric_version":
            continue
        if k == "rubric_id" and "rubric_version" in row and not _is_missing(row.get("rubric_version")):
            v = f"{v}@{row['rubric_version']}"
        vals.append(str(escape(v)))
    return " &middot; ".join(vals)


def html_table(
    df: pd.DataFrame,
    *,
    name: str,
    parts: list[tuple[str, list[str]]] | None = None,
    max_rows: int = 200,
    classes: dict[str, str] | None = None,
    empty: str = "No data.",
) -> Markup:
    """The table as one or more ``<table>`` parts, each inside a ``div.tablewrap`` (the container checked
    for clipping). ``parts`` names column groups explicitly; otherwise they are packed to the page width."""
    if df.empty:
        return Markup(f'<p class="note">{escape(empty)}</p>')
    keys = [k for k in KEYS if k in df.columns]
    columns = set(df.columns)
    rows = df.to_dict(orient="records")
    if parts is None:
        packed = split_parts(df, keys)
        parts = [(f"part {i + 1} of {len(packed)}" if len(packed) > 1 else "", p) for i, p in enumerate(packed)]
    else:  # an explicit part still wider than the page is packed again
        refit: list[tuple[str, list[str]]] = []
        for title, cols in parts:
            sel = keys + [x for c in cols for x in (c, f"{c}_lo", f"{c}_hi") if x in columns and x not in keys]
            sub = split_parts(df[sel], keys)
            refit += [(f"{title} ({i + 1}/{len(sub)})" if len(sub) > 1 else title, p) for i, p in enumerate(sub)]
        parts = refit
    key_title = " · ".join(k.replace("rubric_id", "rubric@version") for k in keys if k != "rubric_version")
    out = []
    for title, cols in parts:
        cols = [c for c in display_columns(cols) if c in columns]
        if not cols:
            continue
        html = [f'<div class="tablewrap" data-table="{escape(name)}">']
        if title:
            html.append(f'<p class="part">{escape(title)}</p>')
        html.append("<table><thead><tr>")
        html.append(f'<th class="key l">{escape(key_title)}</th>')
        for c in cols:
            label = c + (" [95% CI]" if f"{c}_lo" in columns else "")
            html.append(f'<th class="l">{escape(label)}</th>')
        html.append("</tr></thead><tbody>")
        for r in rows[:max_rows]:
            html.append(f'<tr><th class="key l" scope="row">{_key_html(r, keys)}</th>')
            for c in cols:
                text, is_text = _cell(r, c, columns)
                cls = []
                if is_text:
                    cls.append("l")
                    if len(text) > WRAP_CHARS:
                        cls.append("wrap")
                extra = (classes or {}).get(f"{c}={text}")
                if extra:
                    cls.append(extra)
                attr = f' class="{" ".join(cls)}"' if cls else ""
                html.append(f"<td{attr}>{escape(text)}</td>")
            html.append("</tr>")
        html.append("</tbody></table></div>")
        out.append("".join(html))
    if len(rows) > max_rows:
        out.append(f'<p class="note">First {max_rows} of {len(rows)} rows; all in the export.</p>')
    return Markup("\n".join(out))


def matrix_table(mat: Any, row_names: list[str], col_names: list[str], *, corner: str, caption: str) -> Markup:
    """A confusion matrix as an HTML table (rows: reference, columns: other), totals on the margins."""
    html = [f'<div class="tablewrap cm" data-table="confusion"><table class="matrix"><caption>{escape(caption)}</caption>',
            f'<thead><tr><th class="l">{escape(corner)}</th>']
    html += [f"<th>{escape(c)}</th>" for c in col_names] + ["<th>total</th></tr></thead><tbody>"]
    for i, rn in enumerate(row_names):
        html.append(f'<tr><th class="l" scope="row">{escape(rn)}</th>')
        for j in range(len(col_names)):
            v = int(mat[i][j])
            html.append(f'<td class="{"diag" if i == j else ""}">{v if v else ""}</td>')
        html.append(f"<td><b>{int(sum(mat[i]))}</b></td></tr>")
    html.append('<tr><th class="l">total</th>')
    html += [f"<td><b>{int(sum(mat[i][j] for i in range(len(row_names))))}</b></td>" for j in range(len(col_names))]
    html.append(f"<td><b>{int(sum(sum(r) for r in mat))}</b></td></tr></tbody></table></div>")
    return Markup("".join(html))
