"""``[organization.source]`` with ``type = "scim"``: the bearer token the identity provider sends.

The identity provider pushes to the daemon (``dirsync.scim``); the source section holds only the
token it authenticates with, inline (``token``, or ``"${NAME}"``) or in a file (``token_file``).
This module imports pydantic and ``dirsync.config`` only, like every source's settings.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator

from dirsync.config.fields import FileSecret, InlineSecret, SourceSettings


class ScimSourceSettings(SourceSettings):
    type: Literal["scim"]
    pushed: ClassVar[bool] = True
    token: InlineSecret = None
    token_file: FileSecret = None

    @model_validator(mode="after")
    def _one_token(self) -> ScimSourceSettings:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("set exactly one of token and token_file")
        return self
