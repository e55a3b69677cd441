"""Command-line interface: a thin Typer shell over the library API.

Each capability adds its commands here; bad input (:class:`oligolab.errors.InputError`) is printed as one
line and the command exits with status 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from .errors import InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="oligolab: check assays against genomes, design CRISPR diagnostics and siRNAs, run the qPCR lab.",
)
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """oligolab: check assays against genomes, design CRISPR diagnostics and siRNAs, run the qPCR lab."""


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


#: command name -> the module whose import registers it on ``app`` (one per capability)
COMMAND_MODULES = {
    "check": "check.cli",
    "sirna": "sirna.cli",
    "lab": "lab.cli",
    "design": "design.cli",
    "serve": "service.cli",
}


def _register(argv: list[str] | None = None) -> None:
    """Import the module of the command ``argv`` names (0.2 s less start-up than importing every capability);
    every module without ``argv`` or for anything else (``--help``, a mistyped command), so the help lists them
    all."""
    import importlib

    wanted = [COMMAND_MODULES[argv[0]]] if argv and argv[0] in COMMAND_MODULES else COMMAND_MODULES.values()
    for name in wanted:
        importlib.import_module(f"{__package__}.{name}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``oligolab`` command."""
    _register(sys.argv[1:] if argv is None else argv)
    try:
        app(args=argv, standalone_mode=True)
    except InputError as exc:  # raised outside a command's own handler
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:  # disk full, permission denied, a file where a folder should be: one line, no traceback
        err_console.print(f"[bold red]error:[/] {InputError.from_os_error(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover  (`python -m oligolab.cli`: use the package's module)
    from oligolab.cli import main as _main

    _main()
