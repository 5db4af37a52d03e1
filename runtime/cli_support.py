"""Shared click plumbing: one-line errors with the right exit status for every vaeport command."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from vaeport.runtime.errors import TrainingError, VaeportError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class OneLineErrors(click.Command):
    """A click command whose failures print `<prog>: error: <reason>` and nothing else.

    Usage errors and VaeportError exit 2; TrainingError (the work itself failed) exits 1.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        prog = kwargs.get("prog_name") or os.path.basename(sys.argv[0]) or "vaeport"
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"{prog}: error: {exc.format_message()}", err=True)
            sys.exit(EXIT_BAD_INPUT if isinstance(exc, click.UsageError) else exc.exit_code)
        except TrainingError as exc:
            click.echo(f"{prog}: error: {exc}", err=True)
            sys.exit(EXIT_FAILED)
        except VaeportError as exc:
            click.echo(f"{prog}: error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.exceptions.Abort:
            click.echo(f"{prog}: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        # With standalone_mode=False click returns the exit code of ctx.exit() (for --help: 0).
        sys.exit(rv if isinstance(rv, int) else 0)
