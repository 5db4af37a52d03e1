"""Shared click plumbing: one-line errors with the exit status of `vaeport.runtime.errors`."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from vaeport.runtime.errors import EXIT_OS_ERROR, EXIT_USAGE, Interrupted, VaeportError, describe_os_error


def fail(prog: str, message: str, code: int) -> None:
    click.echo(f"{prog}: error: {message}", err=True)
    sys.exit(code)


class OneLineErrors(click.Command):
    """A click command whose failures print `<prog>: error: <reason>` and exit with the code of the
    error's class (usage errors: 2; OS errors on a path: 6; Ctrl-C: 130)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        prog = kwargs.get("prog_name") or os.path.basename(sys.argv[0]) or "vaeport"
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            fail(prog, exc.format_message(), EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
        except Interrupted as exc:
            click.echo(f"{prog}: {exc}", err=True)
            sys.exit(exc.exit_code)
        except VaeportError as exc:
            fail(prog, str(exc), exc.exit_code)
        except OSError as exc:
            fail(prog, describe_os_error(exc), EXIT_OS_ERROR)
        except click.exceptions.Abort:
            click.echo(f"{prog}: interrupted", err=True)
            sys.exit(Interrupted.exit_code)
        # With standalone_mode=False click returns the exit code of ctx.exit() (for --help: 0).
        sys.exit(rv if isinstance(rv, int) else 0)
