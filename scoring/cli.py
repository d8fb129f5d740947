"""The ``scoring`` command: a thin door onto the pipeline's functions."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import typer

import scoring.commands as _commands

app = typer.Typer(
    name="scoring",
    help="Pre-score micro-credential evidence against rubrics, route what the model cannot score well, "
    "and keep agreement auditable.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_all() -> None:
    for mod in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"scoring.commands.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


OPTIONAL_VALUES = {"--store": "default"}  # options whose value may be left out: `--store` alone = the default


def optional_values(argv: list[str]) -> list[str]:
    """Give a bare ``--store`` its default value, so ``--store`` and ``--store URL`` both work.

    Why here: click (under typer) has no option that takes a value only when one follows.
    """
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg in OPTIONAL_VALUES and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(OPTIONAL_VALUES[arg])
    return out


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from pydantic import ValidationError

    from scoring.settings import get_settings, settings_problem, unknown_settings

    try:
        get_settings()  # read once here: a bad SCORING_* value is one line, not a traceback mid-command
    except ValidationError as exc:
        print(f"error: {settings_problem(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    for line in unknown_settings(os.environ):
        print(f"warning: {line}", file=sys.stderr)
    app(args=optional_values(sys.argv[1:]))


_register_all()

if __name__ == "__main__":
    main()
