"""Store each item's recognised lines in SQLite and find items by the text in them (FTS5, trigram tokenizer).

Two objects per index, named from one table name so the index can live in the catalog's own database:

- ``<name>_lines``: one row per line (item id, line number, text as read, its normalised form, box, confidence);
- ``<name>``: an FTS5 table over the normalised text (external content: the lines table), kept in step by
  triggers, tokenised into trigrams so Chinese substrings match without word boundaries.

- ``<name>_short``: an FTS5 table over each line's distinct 1- and 2-character substrings (``short_grams``),
  because a trigram cannot match "药", "发票" or "ok", and LIKE on every line takes ~0.4 s at 100k items.

A query is split on whitespace and each term normalised (``textnorm``); a line matches when it contains every
term. Terms of 3+ characters use the trigram table (shorter terms of the same query are then checked with LIKE on
the lines it found); a query of only short terms uses the n-gram table.

Methods do not commit: the caller owns the transaction (the scanner commits per batch).
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Iterable, Sequence

from materialsearch.catalog.textnorm import normalize_text, query_terms
from materialsearch.ocr.engine import OcrLine

# Fewest characters a trigram index can match; shorter terms use the n-gram table (unigrams and bigrams).
TRIGRAM = 3
# Matching lines read per wanted item in the first attempt (an item whose text repeats a word has several).
LINES_READ_PER_ITEM = 4
# Most matching lines ranked by bm25; a query matching more lists the newest lines first (see ``search``).
RANKED_MATCHES_MAX = 5000
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclasses.dataclass(frozen=True)
class TextHit:
    """An item whose text matches: its id, the best-matching line as read (the snippet), and its rank score."""

    item_id: int
    snippet: str
    score: float  # lower is better: FTS5 bm25, or minus the line's row id when too many lines match to rank


def short_grams(norm: str) -> str:
    """The distinct 1- and 2-character substrings of a normalised line, space-separated (one FTS5 token each)."""
    grams = dict.fromkeys(norm[i : i + size] for size in (1, 2) for i in range(len(norm) - size + 1))
    return " ".join(grams)


class TextIndex:
    """Recognised lines of items in one SQLite database, searchable by normalised substrings."""

    def __init__(self, connection: sqlite3.Connection | sqlite3.Cursor, name: str = "ocr_text") -> None:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
        self.connection = connection
        self.name = name
        self.lines_table = f"{name}_lines"
        self.short_table = f"{name}_short"

    def create(self) -> None:
        """Create the tables and triggers if missing: idempotent, and inside the caller's transaction (a schema
        migration's), since each statement is executed on its own (``executescript`` would commit first)."""
        fts, lines, short = self.name, self.lines_table, self.short_table
        statements = [
            # UNIQUE (item_id, line_no) is also the index that finds, replaces and deletes an item's lines.
            f"""CREATE TABLE IF NOT EXISTS {lines} (
                id INTEGER PRIMARY KEY,
                item_id INTEGER NOT NULL,
                line_no INTEGER NOT NULL,
                text TEXT NOT NULL,
                norm TEXT NOT NULL,
                grams TEXT NOT NULL,
                box_left REAL NOT NULL,
                box_top REAL NOT NULL,
                box_right REAL NOT NULL,
                box_bottom REAL NOT NULL,
                confidence REAL NOT NULL,
                UNIQUE (item_id, line_no)
            )""",
            f"""CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(
                norm, content='{lines}', content_rowid='id', tokenize='trigram'
            )""",
            f"""CREATE VIRTUAL TABLE IF NOT EXISTS {short} USING fts5(
                grams, content='{lines}', content_rowid='id', tokenize='unicode61'
            )""",
            f"""CREATE TRIGGER IF NOT EXISTS {lines}_insert AFTER INSERT ON {lines} BEGIN
                INSERT INTO {fts}(rowid, norm) VALUES (new.id, new.norm);
                INSERT INTO {short}(rowid, grams) VALUES (new.id, new.grams);
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {lines}_delete AFTER DELETE ON {lines} BEGIN
                INSERT INTO {fts}({fts}, rowid, norm) VALUES ('delete', old.id, old.norm);
                INSERT INTO {short}({short}, rowid, grams) VALUES ('delete', old.id, old.grams);
            END""",
        ]
        for statement in statements:
            self.connection.execute(statement)

    def replace(self, item_id: int, lines: Iterable[OcrLine]) -> None:
        """Make ``lines`` the item's text (none: the item has no text), replacing what was stored."""
        self.replace_many([(item_id, lines)])

    def replace_many(self, items: Iterable[tuple[int, Iterable[OcrLine]]]) -> None:
        """``replace`` for a batch of (item id, lines): two statements for the whole batch."""
        items = list(items)
        self.delete([item_id for item_id, _ in items])
        rows = []
        for item_id, lines in items:
            for number, line in enumerate(lines):
                norm = normalize_text(line.text)
                rows.append((item_id, number, line.text, norm, short_grams(norm), *line.box, line.confidence))
        self.connection.executemany(
            f"INSERT INTO {self.lines_table} (item_id, line_no, text, norm, grams, box_left, box_top, box_right,"
            " box_bottom, confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def delete(self, item_ids: Sequence[int]) -> None:
        """Forget the text of these items."""
        self.connection.executemany(
            f"DELETE FROM {self.lines_table} WHERE item_id = ?", [(item_id,) for item_id in item_ids]
        )

    def lines(self, item_id: int) -> list[OcrLine]:
        """The item's lines in reading order, as stored."""
        rows = self.connection.execute(
            f"SELECT text, box_left, box_top, box_right, box_bottom, confidence FROM {self.lines_table}"
            " WHERE item_id = ? ORDER BY line_no",
            (item_id,),
        )
        return [
            OcrLine(text, (left, top, right, bottom), confidence) for text, left, top, right, bottom, confidence in rows
        ]

    def search(self, query: str, limit: int) -> list[TextHit]:
        """Items with a line containing every term of ``query``, best first (at most ``limit``)."""
        terms = query_terms(query)
        if not terms or limit <= 0:
            return []
        long_terms = [term for term in terms if len(term) >= TRIGRAM]
        short_terms = [term for term in terms if len(term) < TRIGRAM]
        # Normalised terms hold only letters, digits and marks: safe inside FTS5 strings and LIKE patterns.
        if long_terms:
            # The trigram table narrows the lines; short terms are then checked on those lines alone.
            ranked, expression = self.name, " AND ".join(f'"{term}"' for term in long_terms)
            likes, patterns = " AND l.norm LIKE ?" * len(short_terms), [f"%{term}%" for term in short_terms]
        else:
            ranked, expression = self.short_table, " AND ".join(f'"{term}"' for term in short_terms)
            likes, patterns = "", []
        # Lines only need joining inside the match when LIKE filters read their text; otherwise the full-text
        # table ranks and cuts alone and only the lines kept are looked up.
        if likes:
            match = f"FROM {ranked} JOIN {self.lines_table} AS l ON l.id = {ranked}.rowid WHERE {ranked} MATCH ?{likes}"
        else:
            match = f"FROM {ranked} WHERE {ranked} MATCH ?"
        parameters = [expression, *patterns]
        # bm25 ranks every matching line before the first is returned: fine for a few thousand, ~1 s for a term
        # in a third of 450k lines. Past RANKED_MATCHES_MAX matches the newest lines come first instead, which
        # SQLite streams from the index and stops reading at the limit.
        count = self.connection.execute(
            f"SELECT count(*) FROM (SELECT 1 {match} LIMIT ?)", [*parameters, RANKED_MATCHES_MAX + 1]
        ).fetchone()[0]
        order = f"{ranked}.rowid DESC" if count > RANKED_MATCHES_MAX else f"{ranked}.rank"
        score = f"-{ranked}.rowid" if count > RANKED_MATCHES_MAX else f"{ranked}.rank"
        sql = (
            f"SELECT l.item_id, l.text, m.score FROM (SELECT {ranked}.rowid AS line_id, {score} AS score {match}"
            f" ORDER BY {order} LIMIT ?) AS m JOIN {self.lines_table} AS l ON l.id = m.line_id ORDER BY m.score"
        )
        # An item with several matching lines fills several rows: read more until ``limit`` items are found.
        rows_wanted = limit * LINES_READ_PER_ITEM
        while True:
            rows = self.connection.execute(sql, [*parameters, rows_wanted]).fetchall()
            hits: dict[int, TextHit] = {}
            for item_id, text, score in rows:
                if item_id not in hits:
                    hits[item_id] = TextHit(item_id, text, float(score))
            if len(hits) >= limit or len(rows) < rows_wanted:
                return list(hits.values())[:limit]
            rows_wanted *= 4
