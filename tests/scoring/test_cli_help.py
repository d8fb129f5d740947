"""Every option's help reads in ``--help`` as it is written in the code.

Typer renders help through rich markup, where ``[word]`` is a style tag and silently vanishes: the
``--engine`` help once read ``pip install '.'`` (the ``[ray]`` extra gone) and ``--score-col`` lost its
``[@KIND]``. Square brackets meant literally are written ``\\[``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from rich.text import Text

from scoring.cli import app


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path, cmd


def _shown(text: str) -> str:
    """What rich prints of ``text``."""
    return Text.from_markup(text).plain


def _meant(text: str) -> str:
    """What the author meant ``text`` to print (escaped brackets are literal brackets)."""
    return text.replace("\\[", "[")


def test_no_help_text_loses_square_brackets_to_rich_markup() -> None:
    lost = []
    for path, cmd in _commands(typer.main.get_command(app)):
        texts = [("(command)", cmd.help or "")] + [(p.name, getattr(p, "help", None) or "") for p in cmd.params]
        for name, text in texts:
            if _shown(text) != _meant(text):
                lost.append(f"scoring {' '.join(path)} {name}: {text!r} shows as {_shown(text)!r}")
    assert not lost, "\n".join(lost)


def test_score_help_names_the_ray_extra() -> None:
    from typer.testing import CliRunner

    res = CliRunner().invoke(app, ["score", "--help"], env={"COLUMNS": "300"})
    assert res.exit_code == 0
    assert "pip install '.[ray]'" in res.output
