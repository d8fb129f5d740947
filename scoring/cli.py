"""The ``scoring`` command: a thin door onto the pipeline's functions."""

from __future__ import annotations

import importlib
import os
import pkgutil

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


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()


_register_all()

if __name__ == "__main__":
    main()
