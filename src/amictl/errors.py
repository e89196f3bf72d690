"""One error hierarchy; the CLI maps each class to an exit code (cli.md)."""

from __future__ import annotations


class AmictlError(Exception):
    """Base of every error amictl raises on purpose.

    ``hint`` says what to do about it; the CLI prints it on a second line.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(AmictlError):
    """Bad input: a policy, fleet or plan file that does not validate (exit 2)."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        keypart = f"{key}: " if key else ""
        super().__init__(f"{where}{keypart}{message}", hint)
        self.detail = message


class InputErrors(InputError):
    """Every problem found in one file (exit 2): one line each, with file:line and the key.

    ``errors`` are the single errors in line order; ``line`` and ``key`` are the first's.
    """

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.line or 0, e.key or ""))
        first = self.errors[0]
        lines = ["  " + e.message + (f" ({e.hint})" if e.hint else "") for e in self.errors]
        message = f"{len(self.errors)} problems:\n" + "\n".join(lines)
        InputError.__init__(self, message, hint="fix them all, then validate again")
        self.file, self.line, self.key = first.file, first.line, first.key
        self.detail = message


class SafetyError(AmictlError):
    """Refused by a safety check (exit 3)."""

    exit_code = 3


class PartialFailure(AmictlError):
    """Some actions failed, the rest were done (exit 4)."""

    exit_code = 4


class AwsError(AmictlError):
    """An AWS call failed; ``code`` is the AWS error code."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        operation: str = "",
        region: str = "",
        hint: str | None = None,
    ) -> None:
        self.code = code
        self.operation = operation
        self.region = region
        super().__init__(message, hint)


class SandboxError(AmictlError):
    """The local sandbox could not be started, reached or seeded."""


class StateError(AmictlError):
    """The state store could not be opened or is inconsistent."""


class SigningKeyUnavailable(StateError):
    """This connection may not read the plan-signing key (issue 23: on PostgreSQL only a
    signer role can), or ``AMICTL_PLAN_KEY`` is not a key."""


class Interrupted(AmictlError):
    """Stopped by SIGINT (exit 130) or SIGTERM (exit 143) after in-flight work finished."""

    def __init__(self, signum: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.signum = signum
        self.exit_code = 128 + signum
        self.result: object = None


class JournalError(AmictlError):
    """The journal could not be written (disk full, store gone): apply stopped (exit 4)."""

    exit_code = 4


class AuditTrailBroken(AmictlError):
    """``amictl state verify`` found the journal changed behind amictl's back (exit 3)."""

    exit_code = 3


CONFIRMATION_EXIT = 2
"""The one exit code of every command that asks and cannot (docs/cli.md's exit codes)."""


class NeedsConfirmation(AmictlError):
    """A command that asks before it changes anything could not ask (stdin is not a
    terminal) and had no ``--yes`` (exit 2, the same for every such command)."""

    exit_code = CONFIRMATION_EXIT
