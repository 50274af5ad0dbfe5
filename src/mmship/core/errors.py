"""Errors mmship raises for things a user can fix.

Every :class:`MmshipError` carries a ``hint``: the fix, in one sentence. The CLI prints
the message and the hint as one paragraph and exits 1, with no traceback unless
``--debug`` is given.
"""

from __future__ import annotations


class MmshipError(Exception):
    """A problem the user can fix; ``hint`` says how."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nFix: {self.hint}"
        return self.message


class ConfigError(MmshipError):
    """deploy_config.yaml is malformed or inconsistent."""


class AdapterError(MmshipError):
    """No adapter matches a model, or an adapter is used wrongly."""


class DimensionMismatchError(AdapterError):
    """Embedding or fusion dimensions in a model's config or weights disagree."""


class InputSpecError(MmshipError):
    """A declared or sent input does not match the adapter's input spec."""


class RequestFieldError(InputSpecError):
    """A request field is wrong or names something that is not here.

    ``field`` names the field (``input``, ``dimensions``, ``model``); ``code`` is a short
    machine-readable reason (``model_not_found``); ``status`` is the HTTP status the server
    answers with (400 unless said). Protocols whose error bodies name the field (OpenAI's
    ``param`` and ``code``) read them; the others show the message.
    """

    def __init__(
        self, message: str, *, hint: str | None = None, field: str | None = None, code: str | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.code = code
        self.status = status


class PluginError(MmshipError):
    """A plugin failed to load or to register."""


class BundleError(MmshipError):
    """A bundle is missing, malformed or has been tampered with."""


class BuildError(MmshipError):
    """A build stage failed (export parity, accuracy loss, ...)."""


class DeployError(MmshipError):
    """A deploy target refused or failed a deployment."""


class RuntimeUnavailableError(MmshipError):
    """An inference runtime (or the accelerator it needs) is not installed here."""
