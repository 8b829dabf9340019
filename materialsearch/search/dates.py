"""Date words in a search sentence, Chinese and English, as an inclusive range of days (written here: a small
regular grammar, no library; see ``understand``).

Absolute: "2019", "2019年", "2023年3月", "March 2023", "14 March 2023", "2018-07-14", "2018-07", "2015到2017年",
"2015-2017", "between 2015 and 2017", "the 1990s", "90年代"; relative to ``today``: "去年", "今年", "前年",
"上个月", "本月", "昨天", "今天", "前天", "上周", "本周", "上周末", "三年前", "last year", "this year",
"yesterday", "last week", "last weekend", "3 years ago", "the last 7 days"; seasons as months, with a year or a
relative year: "去年夏天", "2019年冬天", "last summer", "summer 2019" (north: spring Mar–May, summer Jun–Aug,
autumn Sep–Nov, winter Dec–Feb; south: shifted by six months; a winter/summer across New Year starts in December
of its year). "since 2019" / "2019年以后" open the end; "before 2019" / "2019年以前" the start.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import re
from collections.abc import Iterator

YEAR = r"(?:19\d\d|20\d\d)"
EARLIEST = dt.date(1900, 1, 1)

MONTHS_EN = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        1,
    )
    for name in names
}
_MONTH_EN = "(?:" + "|".join(sorted(MONTHS_EN, key=len, reverse=True)) + r")\.?"
CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_CN_NUMBER = r"(?:十[一二]?|[一二三四五六七八九]|\d{1,2})"
SEASONS = {
    "spring": "spring",
    "summer": "summer",
    "autumn": "autumn",
    "fall": "autumn",
    "winter": "winter",
    "春天": "spring",
    "春季": "spring",
    "夏天": "summer",
    "夏季": "summer",
    "秋天": "autumn",
    "秋季": "autumn",
    "冬天": "winter",
    "冬季": "winter",
}
# The first month of each season and the hemisphere (a season lasts three months).
SEASON_START = {
    "north": {"spring": 3, "summer": 6, "autumn": 9, "winter": 12},
    "south": {"spring": 9, "summer": 12, "autumn": 3, "winter": 6},
}
_SEASON_EN = r"(?:spring|summer|autumn|fall|winter)"
_SEASON_ZH = r"(?:春天|春季|夏天|夏季|秋天|秋季|冬天|冬季)"
_NUMBER_EN = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10}


@dataclasses.dataclass(frozen=True)
class DateSpan:
    """Days ``first``..``last`` (inclusive; None: open) found at ``start``..``end`` of the sentence."""

    first: dt.date | None
    last: dt.date | None
    start: int
    end: int


def _cn_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text.startswith("十"):
        return 10 + (CN_DIGITS[text[1]] if len(text) > 1 else 0)
    return CN_DIGITS[text]


def month_range(year: int, month: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def year_range(first: int, last: int | None = None) -> tuple[dt.date, dt.date]:
    return dt.date(first, 1, 1), dt.date(last or first, 12, 31)


def season_range(year: int, season: str, hemisphere: str) -> tuple[dt.date, dt.date]:
    """A season of ``year``: its three months (a season starting in December ends in the next year)."""
    start = SEASON_START[hemisphere][season]
    end_year, end_month = (year + 1, start + 2 - 12) if start + 2 > 12 else (year, start + 2)
    return dt.date(year, start, 1), month_range(end_year, end_month)[1]


def _this_season(today: dt.date, season: str, hemisphere: str, back: int = 0) -> tuple[dt.date, dt.date]:
    """ "this summer" (``back`` years before it: "去年夏天")."""
    return season_range(_current_season_year(today, season, hemisphere) - back, season, hemisphere)


def _days(today: dt.date, days: int) -> tuple[dt.date, dt.date]:
    return today - dt.timedelta(days=days - 1), today


def _current_season_year(today: dt.date, season: str, hemisphere: str) -> int:
    """The year the season named "this …" starts in: in January a December-started season began last year."""
    start = SEASON_START[hemisphere][season]
    if start + 2 > 12 and today.month <= start + 2 - 12:
        return today.year - 1
    return today.year


def _last_season(today: dt.date, season: str, hemisphere: str) -> tuple[dt.date, dt.date]:
    """ "last summer": the latest such season that has ended before today."""
    year = _current_season_year(today, season, hemisphere)
    first, last = season_range(year, season, hemisphere)
    while last >= today:
        year -= 1
        first, last = season_range(year, season, hemisphere)
    return first, last


def _week(today: dt.date, weeks_back: int) -> tuple[dt.date, dt.date]:
    monday = today - dt.timedelta(days=today.weekday() + 7 * weeks_back)
    return monday, monday + dt.timedelta(days=6)


def _valid_day(year: int, month: int, day: int) -> tuple[dt.date, dt.date] | None:
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return None
    return date, date


def _month(year: int, month: int) -> tuple[dt.date, dt.date] | None:
    return month_range(year, month) if 1 <= month <= 12 else None


class DateGrammar:
    """The date rules: each a pattern and what its match means (given today and the hemisphere)."""

    def __init__(self):
        relative_year_zh = {"今年": 0, "去年": 1, "前年": 2, "大前年": 3}
        self.rules: list[tuple[re.Pattern, object]] = []
        add = self._add
        # Ranges of years.
        add(rf"(?P<a>{YEAR})\s*年?\s*(?:到|至|-|–|—|~|～)\s*(?P<b>{YEAR})\s*年?", lambda m, t, h: _years(m))
        add(rf"\b(?:from|between)\s+(?P<a>{YEAR})\s+(?:to|and|until|till)\s+(?P<b>{YEAR})\b", lambda m, t, h: _years(m))
        add(rf"\b(?P<a>{YEAR})\s+(?:to|until|till)\s+(?P<b>{YEAR})\b", lambda m, t, h: _years(m))
        # Days.
        add(
            rf"(?<!\d)(?P<y>{YEAR})[-/.](?P<m>\d{{1,2}})[-/.](?P<d>\d{{1,2}})(?!\d)",
            lambda m, t, h: _valid_day(int(m["y"]), int(m["m"]), int(m["d"])),
        )
        add(
            rf"(?P<y>{YEAR})\s*年\s*(?P<m>{_CN_NUMBER})\s*月\s*(?P<d>\d{{1,2}})\s*[日号]",
            lambda m, t, h: _valid_day(int(m["y"]), _cn_number(m["m"]), int(m["d"])),
        )
        add(
            rf"\b(?P<mn>{_MONTH_EN})\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>{YEAR})\b",
            lambda m, t, h: _valid_day(int(m["y"]), MONTHS_EN[m["mn"].lower().rstrip(".")], int(m["d"])),
        )
        add(
            rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mn>{_MONTH_EN})\s*,?\s+(?P<y>{YEAR})\b",
            lambda m, t, h: _valid_day(int(m["y"]), MONTHS_EN[m["mn"].lower().rstrip(".")], int(m["d"])),
        )
        # Months.
        add(
            rf"(?<!\d)(?P<y>{YEAR})[-/.](?P<m>\d{{1,2}})(?![\d\-/.])",
            lambda m, t, h: _month(int(m["y"]), int(m["m"])),
        )
        add(
            rf"(?P<y>{YEAR})\s*年\s*(?P<m>{_CN_NUMBER})\s*月(?:份)?",
            lambda m, t, h: _month(int(m["y"]), _cn_number(m["m"])),
        )
        add(
            rf"(?P<r>{'|'.join(relative_year_zh)})\s*(?P<m>{_CN_NUMBER})\s*月(?:份)?",
            lambda m, t, h: _month(t.year - relative_year_zh[m["r"]], _cn_number(m["m"])),
        )
        add(
            rf"\b(?P<mn>{_MONTH_EN})\s*,?\s+(?:of\s+)?(?P<y>{YEAR})\b",
            lambda m, t, h: _month(int(m["y"]), MONTHS_EN[m["mn"].lower().rstrip(".")]),
        )
        add(
            rf"\b(?P<mn>{_MONTH_EN})\s+(?P<r>last|this)\s+year\b",
            lambda m, t, h: _month(t.year - (m["r"] == "last"), MONTHS_EN[m["mn"].lower().rstrip(".")]),
        )
        # Seasons.
        add(
            rf"(?P<y>{YEAR})\s*年?\s*的?\s*(?P<s>{_SEASON_ZH})",
            lambda m, t, h: season_range(int(m["y"]), SEASONS[m["s"]], h),
        )
        add(
            rf"(?P<r>{'|'.join(relative_year_zh)})\s*的?\s*(?P<s>{_SEASON_ZH})",
            lambda m, t, h: _this_season(t, SEASONS[m["s"]], h, back=relative_year_zh[m["r"]]),
        )
        add(
            rf"\b(?:the\s+)?(?P<s>{_SEASON_EN})\s+(?:of\s+)?(?P<y>{YEAR})\b",
            lambda m, t, h: season_range(int(m["y"]), SEASONS[m["s"].lower()], h),
        )
        add(
            rf"\b(?P<y>{YEAR})\s+(?P<s>{_SEASON_EN})\b",
            lambda m, t, h: season_range(int(m["y"]), SEASONS[m["s"].lower()], h),
        )
        add(rf"\blast\s+(?P<s>{_SEASON_EN})\b", lambda m, t, h: _last_season(t, SEASONS[m["s"].lower()], h))
        add(
            rf"\bthis\s+(?P<s>{_SEASON_EN})\b",
            lambda m, t, h: _this_season(t, SEASONS[m["s"].lower()], h),
        )
        # Decades.
        add(r"\b(?:the\s+)?(?P<c>19|20)(?P<d>\d)0'?s\b", lambda m, t, h: _decade(int(m["c"] + m["d"] + "0")))
        add(r"\b(?:the\s+)?'?(?P<d>[5-9])0s\b", lambda m, t, h: _decade(1900 + int(m["d"]) * 10))
        add(r"(?<!\d)(?P<d>[5-9]|0|1)0\s*年代", lambda m, t, h: _decade_of(int(m["d"])))
        # Relative.
        relative = {
            "大前年": lambda t: year_range(t.year - 3),
            "前年": lambda t: year_range(t.year - 2),
            "去年": lambda t: year_range(t.year - 1),
            "今年": lambda t: year_range(t.year),
            "上上个月": lambda t: _months_back(t, 2),
            "上个月": lambda t: _months_back(t, 1),
            "上月": lambda t: _months_back(t, 1),
            "这个月": lambda t: _months_back(t, 0),
            "本月": lambda t: _months_back(t, 0),
            "前天": lambda t: (t - dt.timedelta(days=2),) * 2,
            "昨天": lambda t: (t - dt.timedelta(days=1),) * 2,
            "今天": lambda t: (t, t),
            "上个周末": lambda t: _weekend(t, 1),
            "上周末": lambda t: _weekend(t, 1),
            "这个周末": lambda t: _weekend(t, 0),
            "这周末": lambda t: _weekend(t, 0),
            "本周末": lambda t: _weekend(t, 0),
            "上个星期": lambda t: _week(t, 1),
            "上星期": lambda t: _week(t, 1),
            "上周": lambda t: _week(t, 1),
            "这个星期": lambda t: _week(t, 0),
            "这周": lambda t: _week(t, 0),
            "本周": lambda t: _week(t, 0),
            "the year before last": lambda t: year_range(t.year - 2),
            "last year": lambda t: year_range(t.year - 1),
            "this year": lambda t: year_range(t.year),
            "last month": lambda t: _months_back(t, 1),
            "this month": lambda t: _months_back(t, 0),
            "the day before yesterday": lambda t: (t - dt.timedelta(days=2),) * 2,
            "yesterday": lambda t: (t - dt.timedelta(days=1),) * 2,
            "today": lambda t: (t, t),
            "last weekend": lambda t: _weekend(t, 1),
            "this weekend": lambda t: _weekend(t, 0),
            "last week": lambda t: _week(t, 1),
            "this week": lambda t: _week(t, 0),
        }
        for words, meaning in relative.items():
            pattern = re.escape(words).replace(r"\ ", r"\s+")
            add(rf"\b{pattern}\b" if words.isascii() else pattern, lambda m, t, h, meaning=meaning: meaning(t))
        add(rf"(?P<n>{_CN_NUMBER})\s*年前", lambda m, t, h: year_range(t.year - _cn_number(m["n"])))
        add(
            r"\b(?P<n>\d{1,2}|a|one|two|three|four|five|six|ten)\s+years?\s+ago\b",
            lambda m, t, h: year_range(t.year - int(_NUMBER_EN.get(m["n"].lower(), m["n"]))),
        )
        add(
            r"\b(?:the\s+)?(?:last|past)\s+(?P<n>\d{1,3})\s+days\b",
            lambda m, t, h: (t - dt.timedelta(days=int(m["n"]) - 1), t),
        )
        add(r"(?:最近|过去)\s*(?P<n>\d{1,3}|[一二三四五六七八九十])\s*天", lambda m, t, h: _days(t, _cn_number(m["n"])))
        # Open ranges, then bare years.
        add(rf"\b(?:since|after)\s+(?P<y>{YEAR})\b", lambda m, t, h: (dt.date(int(m["y"]), 1, 1), None))
        add(rf"\bbefore\s+(?P<y>{YEAR})\b", lambda m, t, h: (None, dt.date(int(m["y"]) - 1, 12, 31)))
        add(rf"(?<!\d)(?P<y>{YEAR})\s*年?\s*(?:以后|之后|以来)", lambda m, t, h: (dt.date(int(m["y"]), 1, 1), None))
        add(rf"(?<!\d)(?P<y>{YEAR})\s*年?\s*(?:以前|之前)", lambda m, t, h: (None, dt.date(int(m["y"]) - 1, 12, 31)))
        add(rf"(?<![\d\w])(?P<y>{YEAR})\s*年(?!代)", lambda m, t, h: year_range(int(m["y"])))
        add(rf"(?<![\w.\-/])(?P<y>{YEAR})(?![\w.\-/]|\s*年)", lambda m, t, h: year_range(int(m["y"])))

    def _add(self, pattern: str, meaning) -> None:
        self.rules.append((re.compile(pattern, re.IGNORECASE), meaning))

    def find(self, sentence: str, today: dt.date, hemisphere: str, free) -> Iterator[DateSpan]:
        """The date spans of ``sentence`` in rule order (earlier rules first), over characters ``free(start, end)``
        says are not taken yet; a span whose days make no sense (13月, 30 February) is skipped."""
        for pattern, meaning in self.rules:
            for match in pattern.finditer(sentence):
                if not free(match.start(), match.end()):
                    continue
                days = meaning(match, today, hemisphere)
                if days is None:
                    continue
                first, last = days
                if first is not None and first > today:  # the future holds no photos yet
                    continue
                yield DateSpan(first, last, match.start(), match.end())


def _years(match) -> tuple[dt.date, dt.date] | None:
    first, last = int(match["a"]), int(match["b"])
    return year_range(first, last) if first <= last else None


def _decade_of(digit: int) -> tuple[dt.date, dt.date]:
    """ "90年代": the 1990s; "00年代", "10年代": the 2000s and 2010s."""
    return _decade((1900 if digit > 1 else 2000) + digit * 10)


def _decade(first: int) -> tuple[dt.date, dt.date]:
    return year_range(first, first + 9)


def _months_back(today: dt.date, months: int) -> tuple[dt.date, dt.date]:
    index = today.year * 12 + today.month - 1 - months
    return month_range(index // 12, index % 12 + 1)


def _weekend(today: dt.date, weeks_back: int) -> tuple[dt.date, dt.date]:
    sunday = _week(today, weeks_back)[1]
    return sunday - dt.timedelta(days=1), sunday
