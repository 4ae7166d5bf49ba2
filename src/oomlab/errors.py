"""One exception hierarchy: the CLI turns any OomlabError into one red line and exit 1."""

from __future__ import annotations


class OomlabError(Exception):
    """Base of every error meant for a person, not a traceback."""


class UnknownNameError(OomlabError, KeyError):
    """A name (backend, task, strategy, scorer, ...) that nothing registered."""

    def __init__(self, kind: str, name: str, valid: list[str]):
        self.kind, self.name, self.valid = kind, name, valid
        plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
        super().__init__(f"unknown {kind} '{name}'; valid {plural}: {', '.join(valid) or '(none)'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class DatasetError(OomlabError):
    """A dataset file that cannot be read; the message names file and line."""


class BackendError(OomlabError):
    """A backend that failed: unreachable server, bad response, model that will not load."""


class ModelNotFoundError(BackendError):
    """A model file or name that does not exist."""


class RunNotFoundError(OomlabError):
    """A run id that is not in the database."""


class ConfigError(OomlabError):
    """A setting out of range or inconsistent with another."""


class FitError(OomlabError):
    """A fit or extrapolation the data does not support."""


class RunBusyError(OomlabError):
    """The run is being written by another live process."""


class AmbiguousRunError(RunNotFoundError):
    """A run-id prefix that several runs share; the message lists them."""
