"""CLI command groups. Each module here defines ``register(app: typer.Typer) -> None``; ``scoring.cli``
calls every one, so an issue's commands live beside its own code and no door holds logic."""
