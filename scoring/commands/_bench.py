import typer

bench_app = typer.Typer(
    help="Benchmarks on real scored data; print figures, last line JSON.", no_args_is_help=True
)
