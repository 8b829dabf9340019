"""The API tokens table (in the catalog's database file): names, SHA-256 hashes and when each was last used.

Only ``auth`` makes, checks and revokes tokens; this module just keeps their records.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine

from materialsearch.catalog.schema import ApiToken


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """What is shown about a token: never its secret."""

    id: int
    name: str
    token_hash: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


_FIELDS = tuple(getattr(ApiToken, field.name) for field in dataclasses.fields(TokenInfo))


class TokenStore:
    """Reads and writes of ``api_tokens`` (on the engine of an open ``Store``, which keeps the schema current)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, name: str, token_hash: str) -> None:
        """Record a new token's hash under a unique name; ValueError if the name is taken."""
        with self.engine.begin() as conn:
            if conn.execute(select(ApiToken.id).where(ApiToken.name == name)).first() is not None:
                raise ValueError(f"a token named {name!r} already exists")
            created = dt.datetime.now().replace(microsecond=0)
            conn.execute(insert(ApiToken).values(name=name, token_hash=token_hash, created_at=created))

    def all(self) -> list[TokenInfo]:
        """Every token, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(*_FIELDS).order_by(ApiToken.id)).all()
        return [TokenInfo(*row) for row in rows]

    def delete(self, name: str) -> bool:
        """Forget the token called ``name``; False when there is none."""
        with self.engine.begin() as conn:
            return conn.execute(delete(ApiToken).where(ApiToken.name == name)).rowcount > 0

    def touch(self, token_id: int, when: dt.datetime) -> None:
        """Record when a token was last used."""
        with self.engine.begin() as conn:
            conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when))
