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
        except click.exceptions.Abort as exc:
            # click turns every KeyboardInterrupt (Interrupted is one) into Abort: keep what it said
            cause = exc.__cause__
            click.echo(f"{prog}: {cause if isinstance(cause, Interrupted) else 'interrupted'}", err=True)
            sys.exit(Interrupted.exit_code)
        # With standalone_mode=False click returns the exit code of ctx.exit() (for --help: 0).
        sys.exit(rv if isinstance(rv, int) else 0)


def device_options(command: Any, *, where: str = "") -> Any:
    """--device and --variant, the same on every command that opens a model folder (`where`: a
    note such as "Model folders only: " in front of each help text)."""
    from vaeport.runtime.files import VARIANTS
    from vaeport.runtime.session import DEVICES

    command = click.option(
        "--variant", type=click.Choice(list(VARIANTS)), default="fp32", show_default=True,
        help=f"{where}which graphs of the model folder (fp16/int8 where exported).",
    )(command)  # fmt: skip
    return click.option(
        "--device", type=click.Choice(list(DEVICES)), default="auto", show_default=True,
        help=f"{where}where ONNX Runtime runs (auto: CUDA when onnxruntime-gpu finds a GPU).",
    )(command)  # fmt: skip


def model_folder_options(where: str = "") -> Any:
    """The decorator form of device_options."""
    return lambda command: device_options(command, where=where)
