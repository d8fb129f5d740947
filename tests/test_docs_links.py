"""Every relative link in README.md and docs/*.md resolves: the file exists and, for a Markdown target, the
anchor is one of its headings' slugs (GitHub's rules: lowercase; punctuation other than hyphens, underscores
and spaces removed; each space a hyphen; a repeated slug gets -1, -2, ...). No network: web links are not
checked. A failure names every broken link with its file and line."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)


def markdown_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _prose_lines(text: str) -> list[str]:
    """The file's lines with fenced code blocks blanked (line numbers kept)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
        elif fence is not None:
            if m and m.group(1) == fence and line.strip().strip("`~") == "":
                fence = None
            out.append("")
        else:
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (inline markup reduced to its text first)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    lines = _prose_lines(text)
    for i, line in enumerate(lines):
        m = ATX.match(line)
        heading = m.group(2) if m else None
        if heading is None and i > 0 and SETEXT.match(line) and lines[i - 1].strip() and \
                not lines[i - 1].lstrip().startswith(("|", "-", "*", ">")) and not ATX.match(lines[i - 1]):
            heading = lines[i - 1].strip()
        if heading is None:
            continue
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    found.update(HTML_ANCHOR.findall(text))
    return found


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every inline link outside code: fenced blocks and code spans are skipped."""
    prose = "\n".join(_prose_lines(text))
    prose = CODE_SPAN.sub(lambda m: "x" * len(m.group(0).split("\n")[0]) + "\n" * m.group(0).count("\n"), prose)
    return [(prose.count("\n", 0, m.start()) + 1, m.group(2)) for m in LINK.finditer(prose)]


def broken_links(root: Path) -> list[str]:
    problems: list[str] = []
    cache: dict[Path, set[str]] = {}
    for md in markdown_files(root):
        if not md.exists():
            continue
        for line, target in links(md.read_text(encoding="utf-8")):
            where = f"{md.relative_to(root)}:{line}: ({target})"
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...: not checked here
                continue
            path_part, _, anchor = target.partition("#")
            dest = (md.parent / path_part).resolve() if path_part else md.resolve()
            if not dest.exists():
                problems.append(f"{where} no such file {path_part}")
                continue
            if not anchor or dest.suffix != ".md" or not dest.is_file():
                continue
            if dest not in cache:
                cache[dest] = anchors(dest.read_text(encoding="utf-8"))
            if anchor not in cache[dest]:
                problems.append(f"{where} no heading with anchor #{anchor} in {dest.relative_to(root)}")
    return problems


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    problems = broken_links(ROOT)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_each_docs_page_links_back_to_the_readme() -> None:
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md"))
               if p.name != "benchmarks.md" and "](../README.md" not in p.read_text(encoding="utf-8")]
    assert not missing, f"docs pages without a link back to the README: {missing}"


def test_the_checker_names_a_broken_anchor_a_missing_file_and_accepts_good_links(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# Title\n\n## Scaling out with Ray\n\n## Tests\n\n## Tests\n\n```\n# not a heading\n[x](#nowhere)\n```\n"
        "[ok](#scaling-out-with-ray) [ok](#tests-1) [ok](docs/a.md#the-store-v2) `[skipped](#nope)`\n"
        "[bad](#scaling-out) [bad](docs/missing.md) [bad](docs/a.md#tests)\n",
        encoding="utf-8")
    (tmp_path / "docs" / "a.md").write_text(
        "# The store (v2)\n\n[back](../README.md#tests) [bad](../README.md#not-a-heading)\n", encoding="utf-8")
    problems = broken_links(tmp_path)
    assert len(problems) == 4, problems
    assert any("README.md:14: (#scaling-out) no heading" in p for p in problems)
    assert any("no such file docs/missing.md" in p for p in problems)
    assert any("#tests in docs/a.md" in p for p in problems)
    assert any("docs/a.md:3: (../README.md#not-a-heading)" in p for p in problems)


def test_slugs_follow_githubs_rules() -> None:
    assert slug("6. Benchmark (ASAP-AES, fold 0)") == "6-benchmark-asap-aes-fold-0"
    assert slug("Benchmark: `scoring bench scale`") == "benchmark-scoring-bench-scale"
    assert slug("The assessor page: `/assessor`") == "the-assessor-page-assessor"
    assert slug("Feedback for \"not yet\"") == "feedback-for-not-yet"
    assert slug("The researcher's report") == "the-researchers-report"
