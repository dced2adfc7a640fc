"""What every config table shares: frozen models that reject unknown keys, and credential names.

Kept apart from config.py so the tables in other modules (config_network.py) build on it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A credential is a file name in the credentials folder (and in $CREDENTIALS_DIRECTORY).
CredentialName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@+-]{1,200}$")]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def at_most_one(model: BaseModel, *names: str) -> None:
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) > 1:
        raise ValueError(f"give only one of {', '.join(names)} (got {', '.join(given)})")
