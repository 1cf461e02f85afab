"""The one exception family the command line turns into a clear message and an exit code."""

from __future__ import annotations


class PantauError(Exception):
    """A broken contract or an unusable environment, with what to do about it.

    ``problem`` says what is wrong, ``fix`` says what the user should do. The CLI prints both
    and exits with ``exit_code``; nothing else catches this family.
    """

    exit_code = 1

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem}\n  fix: {self.fix}" if self.fix else self.problem


class ConfigError(PantauError):
    """A setting is missing or invalid."""

    exit_code = 2


class MissingDependencyError(PantauError):
    """A program or extension Pantau needs is not installed."""

    exit_code = 3


class ServiceUnavailableError(PantauError):
    """The broker or the database cannot be reached."""

    exit_code = 4
