"""Text normalisation for search, and the SQLite FTS5 text index over recognised lines (a real temp database)."""

from __future__ import annotations

import sqlite3

import pytest

from materialsearch.catalog import fts as textindex
from materialsearch.catalog.fts import TextIndex, short_grams
from materialsearch.catalog.textnorm import normalize_text, query_terms
from materialsearch.ocr.engine import OcrLine

BOX = (0.1, 0.2, 0.6, 0.3)


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("ＡＢＣ１２３", "abc123"),  # full-width → half-width
        ("Shot Type, analysis!", "shottypeanalysis"),  # case, punctuation and spaces
        ("是非不得問之人", "是非不得问之人"),  # traditional → simplified
        ("027-88852022", "02788852022"),
        ("－40°℃深度防冻", "40c深度防冻"),  # NFKC turns ℃ into °C; the degree sign is a symbol
        ("Straße", "strasse"),
        ("  \t\n", ""),
    ],
)
def test_normalize_text(raw, folded):
    assert normalize_text(raw) == folded


def test_query_terms_split_before_spaces_are_removed():
    assert query_terms("MovieShots  Dataset 假一赔十 ，") == ["movieshots", "dataset", "假一赔十"]


def test_short_grams_are_the_distinct_unigrams_and_bigrams():
    assert short_grams("abab") == "a b ab ba"
    assert short_grams("") == ""


def test_sqlite_has_fts5_with_the_trigram_tokenizer():
    connection = sqlite3.connect(":memory:")
    assert sqlite3.sqlite_version_info >= (3, 34)  # the trigram tokenizer's first release
    connection.execute("CREATE VIRTUAL TABLE probe USING fts5(body, tokenize='trigram')")
    connection.execute("INSERT INTO probe VALUES ('诺贝尔化学奖得主')")
    assert connection.execute("SELECT count(*) FROM probe WHERE probe MATCH '\"化学奖\"'").fetchone() == (1,)


@pytest.fixture
def connection(tmp_path):
    connection = sqlite3.connect(tmp_path / "catalog.db")
    yield connection
    connection.close()


@pytest.fixture
def index(connection):
    index = TextIndex(connection, "ocr_text")
    index.create()
    with connection:
        index.replace(1, [OcrLine("诺贝尔化学奖得主", BOX, 0.99), OcrLine("2024年10月9日", BOX, 0.95)])
        index.replace(2, [OcrLine("3MovieShotsDataset", BOX, 0.99), OcrLine("shot type analysis", BOX, 0.96)])
        index.replace(3, [OcrLine("是非不得問之人", BOX, 0.99)])
        index.replace(4, [OcrLine("发票 OK", BOX, 0.9)])
        index.replace(5, [OcrLine("027-88852022", BOX, 1.0)])
    return index


def ids(hits):
    return [hit.item_id for hit in hits]


def test_cjk_substrings_match_without_word_boundaries(index):
    (hit,) = index.search("化学奖", 10)
    assert (hit.item_id, hit.snippet) == (1, "诺贝尔化学奖得主")
    assert ids(index.search("诺贝尔化学奖", 10)) == [1]


def test_english_words_match_though_ocr_lost_the_spaces(index):
    assert ids(index.search("MovieShots Dataset", 10)) == [2]
    assert ids(index.search("movieshots dataset", 10)) == [2]
    assert index.search("shot type", 10)[0].snippet == "shot type analysis"
    assert ids(index.search("dataset nosuchword", 10)) == []  # every term must be in the line


def test_traditional_and_simplified_find_each_other(index):
    assert ids(index.search("是非不得问之人", 10)) == [3]
    assert ids(index.search("問之", 10)) == [3]


def test_punctuation_and_width_do_not_matter(index):
    assert ids(index.search("027 8885 2022", 10)) == ids(index.search("０２７－８８８５２０２２", 10)) == [5]


def test_queries_shorter_than_a_trigram(index):
    assert ids(index.search("发票", 10)) == [4]
    assert ids(index.search("票", 10)) == [4]
    assert ids(index.search("ok", 10)) == [4]
    assert ids(index.search("月", 10)) == [1]
    assert ids(index.search("2024 月", 10)) == [1]  # a trigram term narrows, the short one filters
    assert ids(index.search("2024 票", 10)) == []
    assert index.search("，。!", 10) == [] and index.search("", 10) == []


def test_replace_delete_and_lines(connection, index):
    assert index.lines(1) == [OcrLine("诺贝尔化学奖得主", BOX, 0.99), OcrLine("2024年10月9日", BOX, 0.95)]
    with connection:
        index.replace(1, [OcrLine("新的文字", BOX, 0.9)])
    assert ids(index.search("化学奖", 10)) == [] and ids(index.search("新的文字", 10)) == [1]
    assert ids(index.search("文", 10)) == [1]
    with connection:
        index.delete([1, 2])
    assert index.lines(1) == [] and index.search("新的文字", 10) == [] and index.search("dataset", 10) == []
    assert ids(index.search("问之人", 10)) == [3]


def test_the_index_survives_reopening(tmp_path, index, connection):
    connection.close()
    reopened = sqlite3.connect(tmp_path / "catalog.db")
    again = TextIndex(reopened, "ocr_text")
    again.create()  # idempotent: a migration may run it on every start
    assert ids(again.search("化学奖", 10)) == [1]
    reopened.close()


def test_create_joins_the_callers_transaction(connection):
    """A migration creates the index inside its own transaction: rolled back, nothing is left."""
    connection.execute("BEGIN")
    TextIndex(connection.cursor(), "ocr_text").create()
    connection.rollback()
    assert connection.execute("SELECT name FROM sqlite_master WHERE name LIKE 'ocr_text%'").fetchall() == []


def test_two_indexes_share_a_database_under_their_own_names(connection, index):
    other = TextIndex(connection, "frames_text")
    other.create()
    with connection:
        other.replace(1, [OcrLine("只在视频里", BOX, 0.9)])
    assert ids(other.search("视频", 10)) == [1] and index.search("视频", 10) == []
    assert ids(other.search("化学奖", 10)) == []


def test_a_table_name_must_be_a_plain_identifier(connection):
    with pytest.raises(ValueError, match="identifier"):
        TextIndex(connection, "ocr; DROP TABLE items")


def test_an_item_with_many_matching_lines_counts_once(connection, index):
    with connection:
        index.replace(9, [OcrLine(f"化学奖 第{n}行", BOX, 0.9) for n in range(30)])
    hits = index.search("化学奖", 2)
    assert len(hits) == 2 and len(set(ids(hits))) == 2
    assert set(ids(index.search("化学奖", 10))) == {1, 9}


def test_ranked_by_bm25_then_newest_first_past_the_ranking_limit(connection, index, monkeypatch):
    with connection:
        for item in range(20, 60):  # other text, so that the query's trigrams are rare (bm25's idf)
            index.replace(item, [OcrLine(f"别的文字{item}", BOX, 0.9)])
        for item in range(60, 66):
            index.replace(item, [OcrLine("收据 总计" + "，以及很长的一行别的文字" * 3, BOX, 0.9)])
        index.replace(66, [OcrLine("收据总计", BOX, 0.9)])
    ranked = index.search("收据总计", 3)
    assert ranked[0].item_id == 66  # the line that is nothing but the words scores best in bm25
    monkeypatch.setattr(textindex, "RANKED_MATCHES_MAX", 4)
    newest = index.search("收据总计", 3)
    assert ids(newest) == [66, 65, 64] and all(hit.score < 0 for hit in newest)
