"""The text found in photos on PostgreSQL: the lines table with a trigram (pg_trgm) GIN index on their normalised
text, the twin of SQLite's FTS5 ``TextIndex`` with the same methods.

A query is split and normalised as there (``textnorm``); a line matches when it contains every term
(``LIKE '%term%'`` each, which the trigram index answers for terms of 3+ characters: Chinese substrings match
without word boundaries; shorter terms are checked on the lines the others found, or read through the index's full
scan when a query has only short terms). Lines rank by trigram similarity to the query (``score``: minus it, lower
is better), then newest first; FTS5 ranks by bm25, so the order of equally matching photos may differ between the
two engines — which photos match does not.

Methods do not commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from materialsearch.catalog.fts import LINES_READ_PER_ITEM, TextHit
from materialsearch.catalog.sql import Qmark
from materialsearch.catalog.textnorm import normalize_text, query_terms
from materialsearch.ocr.engine import OcrLine


class PgTextIndex:
    """Recognised lines of items in the catalog's PostgreSQL database, searchable by normalised substrings."""

    def __init__(self, connection: Qmark, name: str = "ocr_text") -> None:
        self.connection = connection
        self.lines_table = f"{name}_lines"

    def replace_many(self, items: Iterable[tuple[int, Iterable[OcrLine]]]) -> None:
        """Each (item id, lines) replaces the item's stored lines."""
        items = list(items)
        self.delete([item_id for item_id, _ in items])
        rows = [
            (item_id, number, line.text, normalize_text(line.text), *line.box, line.confidence)
            for item_id, lines in items
            for number, line in enumerate(lines)
        ]
        self.connection.executemany(
            f"INSERT INTO {self.lines_table} (item_id, line_no, text, norm, box_left, box_top, box_right, box_bottom,"
            " confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def delete(self, item_ids: Sequence[int]) -> None:
        """Forget the text of these items."""
        if item_ids:
            self.connection.execute(f"DELETE FROM {self.lines_table} WHERE item_id = ANY(?)", (list(item_ids),))

    def lines(self, item_id: int) -> list[OcrLine]:
        """The item's lines in reading order, as stored."""
        rows = self.connection.execute(
            f"SELECT text, box_left, box_top, box_right, box_bottom, confidence FROM {self.lines_table}"
            " WHERE item_id = ? ORDER BY line_no",
            (item_id,),
        ).fetchall()
        return [
            OcrLine(text, (left, top, right, bottom), confidence) for text, left, top, right, bottom, confidence in rows
        ]

    def search(self, query: str, limit: int) -> list[TextHit]:
        """Items with a line containing every term of ``query``, best first (at most ``limit``)."""
        terms = query_terms(query)
        if not terms or limit <= 0:
            return []
        # Normalised terms hold only letters, digits and marks: safe inside LIKE patterns.
        likes = " AND ".join("norm LIKE ?" for _ in terms)
        sql = (
            f"SELECT item_id, text, -similarity(norm, ?) AS score FROM {self.lines_table} WHERE {likes}"
            " ORDER BY score, id DESC LIMIT ?"
        )
        patterns = [f"%{term}%" for term in terms]
        rows_wanted = limit * LINES_READ_PER_ITEM
        while True:
            rows = self.connection.execute(sql, [" ".join(terms), *patterns, rows_wanted]).fetchall()
            hits: dict[int, TextHit] = {}
            for item_id, text, score in rows:
                if item_id not in hits:
                    hits[item_id] = TextHit(item_id, text, float(score))
            if len(hits) >= limit or len(rows) < rows_wanted:
                return list(hits.values())[:limit]
            rows_wanted *= 4
