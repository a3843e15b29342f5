"""How a command ends when something goes wrong: one line of cause and what to do, and a documented exit code.

Every command is wrapped by ``friendly``: a foreseeable failure (bad configuration, an unreachable database or
server, a refused key, a refusal by the model, no credit) never shows a traceback. Exit codes:

    0  success
    1  could not run: configuration, database, files, or an unexpected error
    2  usage: the command line is wrong (option, model, ratio, empty prompt, unreadable input, unknown id)
    3  refused: the model made no image (a safety refusal or no image); nothing was charged
    4  upstream: the provider or the --server failed or could not be reached; trying again later may help
    5  auth: the API key is missing, wrong, revoked or not allowed to do this
    6  credit: the key has not enough credit for the request
  130  interrupted (Ctrl+C)

Set ``IMAGEGATE_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import typer

from imagegate.errors import ImagegateError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UPSTREAM = 4
EXIT_AUTH = 5
EXIT_CREDIT = 6
EXIT_INTERRUPTED = 130

# Typer vendors click (typer._click) in recent versions; either one's usage errors end the way click ends them.
_CLICK_ERRORS: tuple[type[Exception], ...] = tuple(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"
)
P = ParamSpec("P")
R = TypeVar("R")

_EXIT_BY_KIND = {
    "invalid_request": EXIT_USAGE,
    "not_found": EXIT_USAGE,
    "unprocessable": EXIT_USAGE,
    "conflict": EXIT_FAILED,
    "missing_key": EXIT_AUTH,
    "invalid_key": EXIT_AUTH,
    "permission_denied": EXIT_AUTH,
    "insufficient_credits": EXIT_CREDIT,
    "rate_limited": EXIT_UPSTREAM,
    "upstream_unavailable": EXIT_UPSTREAM,
    "upstream_timeout": EXIT_UPSTREAM,
    "cancelled": EXIT_FAILED,
}
_HINT_BY_EXIT = {
    EXIT_AUTH: "check --key / IMAGEGATE_API_KEY (imagegate keys list shows the keys)",
    EXIT_CREDIT: "add credit with: imagegate credits add KEY_ID AMOUNT",
    EXIT_UPSTREAM: "try again later, or see imagegate providers for the deployments' health",
}


class CliFailure(Exception):
    """A failure the command explains itself: ``message`` (the cause), ``hint`` (what to do), ``code``."""

    def __init__(self, message: str, *, code: int = EXIT_FAILED, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint


def exit_code_for(error: ImagegateError) -> int:
    if error.code == "moderation_blocked":
        return EXIT_REFUSED
    return _EXIT_BY_KIND.get(error.kind, EXIT_FAILED)


def fail(message: str, *, code: int = EXIT_FAILED, hint: str | None = None) -> NoReturn:
    raise CliFailure(message, code=code, hint=hint)


def _say(message: str, hint: str | None) -> None:
    line = f"error: {message.rstrip('.')}"
    if hint:
        line += f" ({hint})"
    typer.echo(line, err=True)


def describe(exc: BaseException) -> CliFailure | None:
    """The explanation of a failure we can foresee, or None for a bug."""
    if isinstance(exc, CliFailure):
        return exc
    if isinstance(exc, ImagegateError):
        code = exit_code_for(exc)
        return CliFailure(exc.message, code=code, hint=_HINT_BY_EXIT.get(code))
    database = _database_failure(exc)
    if database is not None:
        return database
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError):
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return CliFailure(f"{exc.strerror or exc}:{where}", hint="check the path and its permissions")
    if isinstance(exc, OSError):
        return CliFailure(f"{exc.strerror or exc}", hint="check the paths, the database and the network")
    if _is_settings_error(exc):
        return CliFailure(
            f"the configuration is not valid: {_first_line(exc)}",
            hint="fix imagegate.toml or the IMAGEGATE_* variables; imagegate settings prints what is read",
        )
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[:3]) if text else type(exc).__name__


def _is_settings_error(exc: BaseException) -> bool:
    from pydantic import ValidationError

    return isinstance(exc, ValidationError | ValueError)


def _database_failure(exc: BaseException) -> CliFailure | None:
    from sqlalchemy.exc import DBAPIError, OperationalError

    cause: BaseException | None = exc
    while cause is not None:  # asyncpg raises OSError subclasses, SQLAlchemy wraps driver errors
        if isinstance(cause, OperationalError | DBAPIError):
            return CliFailure(
                f"the database could not be used: {_first_line(cause.orig or cause)}",
                hint="is it running and reachable? check IMAGEGATE_DATABASE_URL (imagegate settings shows it)",
            )
        cause = cause.__cause__ or cause.__context__
    text = f"{type(exc).__module__}.{type(exc).__name__}"
    if text.startswith("asyncpg.") or (isinstance(exc, OSError) and "Connect call failed" in str(exc)):
        return CliFailure(
            f"the database could not be reached: {_first_line(exc)}",
            hint="is PostgreSQL running? check IMAGEGATE_DATABASE_URL (imagegate settings shows it)",
        )
    return None


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a Typer command so that a foreseeable failure ends with one line and its exit code."""

    @functools.wraps(command)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except _CLICK_ERRORS:
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if os.environ.get("IMAGEGATE_DEBUG"):
                raise
            explained = describe(exc)
            if explained is None:
                _say(
                    f"unexpected {type(exc).__name__}: {_first_line(exc)}",
                    "a bug: rerun with IMAGEGATE_DEBUG=1 for the traceback and report it",
                )
                raise typer.Exit(EXIT_FAILED) from None
            _say(explained.message, explained.hint)
            raise typer.Exit(explained.code) from None

    return wrapped


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
