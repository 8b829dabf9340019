"""The search sentence parser (``search.understand``): a table of sentences, Chinese, English and mixed, with what
each must become at a fixed "today" (Wednesday 15 May 2024), including the ordinary ones that must stay sentences;
the offsets of what was understood, the southern hemisphere's seasons, and the parser's speed."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from materialsearch.search.understand import Understood, understand
from materialsearch.search.vocabulary import vocabulary

TODAY = dt.date(2024, 5, 15)

# sentence → the parse: q (the words left for the model), date "first/last" (an open end empty), place, text,
# kind, name, exclude, tag, and the offered parts as "field:value". Fields not named are empty.
TABLE = [
    ("去年夏天在海边", {"q": "海边", "date": "2023-06-01/2023-08-31"}),
    ("red bus in London", {"q": "red bus", "place": "London"}),
    ('写着"母婴"的招牌', {"q": "招牌", "text": "母婴"}),
    ("beach -people", {"q": "beach", "exclude": ["people"]}),
    ("2019年的雪景", {"q": "雪景", "date": "2019-01-01/2019-12-31"}),
    ("videos of fireworks", {"q": "fireworks", "kind": "video"}),
    ("a red car", {"q": "a red car"}),
    ("中国风的瓷器", {"q": "中国风的瓷器"}),
    ("nice weather", {"q": "nice weather"}),
    ("a nice sunset", {"q": "a nice sunset"}),
    ("Spain", {"q": "", "place": "Spain"}),
    ("伦敦的红色巴士", {"q": "红色巴士", "place": "伦敦"}),
    ("在北京", {"q": "", "place": "北京"}),
    ("在北京拍的照片", {"q": "", "place": "北京", "kind": "image"}),
    ("北京烤鸭", {"q": "北京烤鸭", "offered": ["place:北京"]}),
    ("London bus", {"q": "London bus", "offered": ["place:London"]}),
    ("in london", {"q": "", "place": "London"}),
    ("sunset in Nice", {"q": "sunset in Nice"}),
    ("蒙古", {"q": "", "place": "蒙古"}),
    ("Mongolia", {"q": "", "place": "Mongolia"}),
    ("蒙古的草原", {"q": "草原", "place": "蒙古"}),
    ("horses in Mongolia", {"q": "horses", "place": "Mongolia"}),
    ("去蒙古", {"q": "", "place": "蒙古"}),
    ("来自日本的朋友", {"q": "朋友", "place": "日本"}),
    ("日本料理", {"q": "日本料理"}),
    ("美国人", {"q": "美国人"}),
    ("photos from Japan", {"q": "", "place": "Japan", "kind": "image"}),
    ("in china", {"q": "", "place": "China"}),
    ("china vase", {"q": "china vase"}),
    ("Turkey", {"q": "", "place": "Turkey"}),
    ("roast turkey", {"q": "roast turkey"}),
    ("Georgia", {"q": "", "place": "Georgia"}),
    ("trip to Paris", {"q": "trip", "place": "Paris"}),
    ("巴黎铁塔", {"q": "巴黎铁塔", "offered": ["place:巴黎"]}),
    ("在巴黎", {"q": "", "place": "巴黎"}),
    ("东京的夜景", {"q": "夜景", "place": "东京"}),
    ("night in Tokyo", {"q": "night", "place": "Tokyo"}),
    ("Tokyo", {"q": "", "place": "Tokyo"}),
    ("北京", {"q": "", "place": "北京"}),
    ("2019年", {"q": "", "date": "2019-01-01/2019-12-31"}),
    ("2019", {"q": "", "date": "2019-01-01/2019-12-31"}),
    ("2023年3月", {"q": "", "date": "2023-03-01/2023-03-31"}),
    ("2023年3月14日", {"q": "", "date": "2023-03-14/2023-03-14"}),
    ("2023年三月", {"q": "", "date": "2023-03-01/2023-03-31"}),
    ("March 2023", {"q": "", "date": "2023-03-01/2023-03-31"}),
    ("14 March 2023", {"q": "", "date": "2023-03-14/2023-03-14"}),
    ("March 14, 2023", {"q": "", "date": "2023-03-14/2023-03-14"}),
    ("2018-07-14", {"q": "", "date": "2018-07-14/2018-07-14"}),
    ("2018/07/14", {"q": "", "date": "2018-07-14/2018-07-14"}),
    ("2018.7.14", {"q": "", "date": "2018-07-14/2018-07-14"}),
    ("2018-07", {"q": "", "date": "2018-07-01/2018-07-31"}),
    ("2015到2017年", {"q": "", "date": "2015-01-01/2017-12-31"}),
    ("2015年到2017年", {"q": "", "date": "2015-01-01/2017-12-31"}),
    ("2015-2017", {"q": "", "date": "2015-01-01/2017-12-31"}),
    ("2015 to 2017", {"q": "", "date": "2015-01-01/2017-12-31"}),
    ("between 2015 and 2017", {"q": "", "date": "2015-01-01/2017-12-31"}),
    ("from 2015 to 2017", {"q": "", "date": "2015-01-01/2017-12-31"}),
    ("the 1990s", {"q": "", "date": "1990-01-01/1999-12-31"}),
    ("1990s", {"q": "", "date": "1990-01-01/1999-12-31"}),
    ("90年代", {"q": "", "date": "1990-01-01/1999-12-31"}),
    ("80年代的老照片", {"q": "老照片", "date": "1980-01-01/1989-12-31"}),
    ("去年", {"q": "", "date": "2023-01-01/2023-12-31"}),
    ("今年", {"q": "", "date": "2024-01-01/2024-12-31"}),
    ("前年", {"q": "", "date": "2022-01-01/2022-12-31"}),
    ("大前年", {"q": "", "date": "2021-01-01/2021-12-31"}),
    ("上个月", {"q": "", "date": "2024-04-01/2024-04-30"}),
    ("这个月", {"q": "", "date": "2024-05-01/2024-05-31"}),
    ("本月", {"q": "", "date": "2024-05-01/2024-05-31"}),
    ("昨天", {"q": "", "date": "2024-05-14/2024-05-14"}),
    ("今天", {"q": "", "date": "2024-05-15/2024-05-15"}),
    ("前天", {"q": "", "date": "2024-05-13/2024-05-13"}),
    ("上周", {"q": "", "date": "2024-05-06/2024-05-12"}),
    ("这周", {"q": "", "date": "2024-05-13/2024-05-19"}),
    ("上周末", {"q": "", "date": "2024-05-11/2024-05-12"}),
    ("三年前", {"q": "", "date": "2021-01-01/2021-12-31"}),
    ("5 years ago", {"q": "", "date": "2019-01-01/2019-12-31"}),
    ("a year ago", {"q": "", "date": "2023-01-01/2023-12-31"}),
    ("last year", {"q": "", "date": "2023-01-01/2023-12-31"}),
    ("this year", {"q": "", "date": "2024-01-01/2024-12-31"}),
    ("the year before last", {"q": "", "date": "2022-01-01/2022-12-31"}),
    ("last month", {"q": "", "date": "2024-04-01/2024-04-30"}),
    ("this month", {"q": "", "date": "2024-05-01/2024-05-31"}),
    ("yesterday", {"q": "", "date": "2024-05-14/2024-05-14"}),
    ("today", {"q": "", "date": "2024-05-15/2024-05-15"}),
    ("last week", {"q": "", "date": "2024-05-06/2024-05-12"}),
    ("this week", {"q": "", "date": "2024-05-13/2024-05-19"}),
    ("last weekend", {"q": "", "date": "2024-05-11/2024-05-12"}),
    ("last summer", {"q": "", "date": "2023-06-01/2023-08-31"}),
    ("this spring", {"q": "", "date": "2024-03-01/2024-05-31"}),
    ("last winter", {"q": "", "date": "2023-12-01/2024-02-29"}),
    ("summer 2019", {"q": "", "date": "2019-06-01/2019-08-31"}),
    ("summer of 2019", {"q": "", "date": "2019-06-01/2019-08-31"}),
    ("2019 summer", {"q": "", "date": "2019-06-01/2019-08-31"}),
    ("the winter of 2018", {"q": "", "date": "2018-12-01/2019-02-28"}),
    ("去年夏天", {"q": "", "date": "2023-06-01/2023-08-31"}),
    ("今年春天", {"q": "", "date": "2024-03-01/2024-05-31"}),
    ("2019年冬天", {"q": "", "date": "2019-12-01/2020-02-29"}),
    ("2019年的秋天", {"q": "", "date": "2019-09-01/2019-11-30"}),
    ("去年3月", {"q": "", "date": "2023-03-01/2023-03-31"}),
    ("去年十月", {"q": "", "date": "2023-10-01/2023-10-31"}),
    ("October last year", {"q": "", "date": "2023-10-01/2023-10-31"}),
    ("since 2020", {"q": "", "date": "2020-01-01/"}),
    ("after 2020", {"q": "", "date": "2020-01-01/"}),
    ("before 2010", {"q": "", "date": "/2009-12-31"}),
    ("2020年以后", {"q": "", "date": "2020-01-01/"}),
    ("2010年以前", {"q": "", "date": "/2009-12-31"}),
    ("最近7天", {"q": "", "date": "2024-05-09/2024-05-15"}),
    ("the last 30 days", {"q": "", "date": "2024-04-16/2024-05-15"}),
    ("2030年", {"q": "2030年"}),
    ("2019年13月", {"q": "13月", "date": "2019-01-01/2019-12-31"}),
    ("yesterday at the beach", {"q": "the beach", "date": "2024-05-14/2024-05-14"}),
    ("sunset yesterday", {"q": "sunset", "date": "2024-05-14/2024-05-14"}),
    ("beach last summer", {"q": "beach", "date": "2023-06-01/2023-08-31"}),
    ("去年在海边的日落", {"q": "海边的日落", "date": "2023-01-01/2023-12-31"}),
    ("2019年在北京的雪景", {"q": "雪景", "date": "2019-01-01/2019-12-31", "place": "北京"}),
    ("snow in Beijing 2019", {"q": "snow", "date": "2019-01-01/2019-12-31", "place": "Beijing"}),
    ('"coffee" sign', {"q": "sign", "text": "coffee"}),
    ("写着“母婴”的招牌", {"q": "招牌", "text": "母婴"}),
    ("「出口」的牌子", {"q": "牌子", "text": "出口"}),
    ("『禁止吸烟』", {"q": "", "text": "禁止吸烟"}),
    ("the word 'exit' on a door", {"q": "a door", "text": "exit"}),
    ('sign saying "no smoking"', {"q": "sign", "text": "no smoking"}),
    ('上面写着"欢迎光临"的门', {"q": "门", "text": "欢迎光临"}),
    ("don't walk sign", {"q": "don't walk sign"}),
    ("没有人的海滩", {"q": "海滩", "exclude": ["人"]}),
    ("海边没有人", {"q": "海边", "exclude": ["人"]}),
    ("不要人", {"q": "", "exclude": ["人"]}),
    ("不含车的街道", {"q": "街道", "exclude": ["车"]}),
    ("-人 海滩", {"q": "海滩", "exclude": ["人"]}),
    ("beach without people", {"q": "beach", "exclude": ["people"]}),
    ("street with no cars", {"q": "street", "exclude": ["cars"]}),
    ("no cars", {"q": "", "exclude": ["cars"]}),
    ("dogs except poodles", {"q": "dogs", "exclude": ["poodles"]}),
    ("no parking sign", {"q": "no parking sign", "offered": ["exclude:parking"]}),
    ("mountains -snow -clouds", {"q": "mountains", "exclude": ["snow", "clouds"]}),
    ("视频", {"q": "", "kind": "video"}),
    ("videos", {"q": "", "kind": "video"}),
    ("烟花视频", {"q": "烟花", "kind": "video"}),
    ("猫的视频", {"q": "猫", "kind": "video"}),
    ("video of a cat", {"q": "a cat", "kind": "video"}),
    ("clips of dogs", {"q": "dogs", "kind": "video"}),
    ("照片", {"q": "", "kind": "image"}),
    ("photos", {"q": "", "kind": "image"}),
    ("photos of cats", {"q": "cats", "kind": "image"}),
    ("猫的照片", {"q": "猫", "kind": "image"}),
    ("a photo of a cat", {"q": "a photo of a cat"}),
    ("photo", {"q": "photo"}),
    ("Live Photo", {"q": "", "kind": "image"}),
    ("Live Photos of a train", {"q": "a train", "kind": "image"}),
    ("实况照片", {"q": "", "kind": "image"}),
    ("photos and videos", {"q": "photos and videos"}),
    ("IMG_1234", {"q": "", "name": "IMG_1234"}),
    ("IMG_1234.JPG", {"q": "", "name": "IMG_1234.JPG"}),
    ("DSC_0042", {"q": "", "name": "DSC_0042"}),
    ("vacation.jpg", {"q": "", "name": "vacation.jpg"}),
    ("PXL_20230101_123456", {"q": "", "name": "PXL_20230101_123456"}),
    ("#cat", {"q": "", "tag": ["cat"]}),
    ("#猫", {"q": "", "tag": ["cat"]}),
    ("#sunset beach", {"q": "beach", "tag": ["sunset"]}),
    ("#nothing", {"q": "#nothing"}),
    ("cat", {"q": "cat", "offered": ["tag:cat"]}),
    ("猫", {"q": "猫", "offered": ["tag:cat"]}),
    ("dog", {"q": "dog", "offered": ["tag:dog"]}),
    ("sunset", {"q": "sunset", "offered": ["tag:sunset"]}),
    ("a dog running on the grass", {"q": "a dog running on the grass"}),
    ("一只在草地上奔跑的狗", {"q": "一只在草地上奔跑的狗"}),
    ("夕阳下的海边", {"q": "夕阳下的海边"}),
    ("孩子吹蜡烛", {"q": "孩子吹蜡烛"}),
    ("红色的汽车", {"q": "红色的汽车"}),
    ("the sea", {"q": "the sea"}),
    ("a train", {"q": "a train"}),
    ("waterfall", {"q": "waterfall", "offered": ["tag:waterfall"]}),
    ("风景", {"q": "风景"}),
    ("cherry blossoms in spring", {"q": "cherry blossoms in spring"}),
    ("a day at the zoo", {"q": "a day at the zoo"}),
    ("birthday party", {"q": "birthday party"}),
    ("New York skyline", {"q": "New York skyline", "offered": ["place:New York City"]}),
    ("in New York", {"q": "", "place": "New York City"}),
    ("纽约的天际线", {"q": "天际线", "place": "New York City"}),
    ("上海外滩", {"q": "上海外滩", "offered": ["place:上海"]}),
    ("在上海外滩", {"q": "外滩", "place": "上海"}),
    ("Shanghai", {"q": "", "place": "Shanghai"}),
    ("去年夏天在伦敦拍的视频", {"q": "", "date": "2023-06-01/2023-08-31", "place": "伦敦", "kind": "video"}),
    ("last summer in London videos", {"q": "", "date": "2023-06-01/2023-08-31", "place": "London", "kind": "video"}),
    ("2019年在英国的照片", {"q": "", "date": "2019-01-01/2019-12-31", "place": "英国", "kind": "image"}),
    ("photos in the UK", {"q": "", "place": "United Kingdom", "kind": "image"}),
    ("in the USA", {"q": "", "place": "United States"}),
    ("蒙古 2011", {"q": "", "date": "2011-01-01/2011-12-31", "place": "蒙古"}),
    ("Mongolia 2011", {"q": "", "date": "2011-01-01/2011-12-31", "place": "Mongolia"}),
    ("2011年8月的蒙古", {"q": "", "date": "2011-08-01/2011-08-31", "place": "蒙古"}),
    ("伦敦 公交车", {"q": "公交车", "place": "伦敦"}),
    ("巴士 伦敦", {"q": "巴士", "place": "伦敦"}),
    ("中国", {"q": "", "place": "中国"}),
    ("中国的长城", {"q": "长城", "place": "中国"}),
    ("长城", {"q": "长城"}),
    ("the great wall of China", {"q": "the great wall", "place": "China"}),
    ("happy new year", {"q": "happy new year"}),
    ("a big apple", {"q": "a big apple"}),
    ("summer vibes", {"q": "summer vibes"}),
    ("the moon at night", {"q": "the moon at night"}),
    ("a girl reading a book", {"q": "a girl reading a book"}),
    ("orange cat", {"q": "orange cat"}),
    ("一只橘猫", {"q": "一只橘猫"}),
    ("大同小异", {"q": "大同小异", "offered": ["place:大同市"]}),
    ("和平鸽", {"q": "和平鸽"}),
    ("长春花", {"q": "长春花", "offered": ["place:长春"]}),
    ("中山装", {"q": "中山装", "offered": ["place:中山"]}),
    ("安康鱼", {"q": "安康鱼"}),
    ("天安门广场", {"q": "天安门广场"}),
    ("在天安门广场", {"q": "在天安门广场", "offered": ["place:天安市"]}),
    ("火车站", {"q": "火车站"}),
    ("school bus", {"q": "school bus"}),
    ("a cup of coffee", {"q": "a cup of coffee"}),
    ("playing in the snow", {"q": "playing in the snow"}),
    ("people at the park", {"q": "people at the park"}),
    ("the river at sunset", {"q": "the river at sunset"}),
    ("beach with no people 2019", {"q": "beach", "date": "2019-01-01/2019-12-31", "exclude": ["people"]}),
    ("street with no cars in London", {"q": "street", "place": "London", "exclude": ["cars"]}),
    ("no cars no people", {"q": "", "exclude": ["cars", "people"]}),
    ("no cars, please", {"q": "please", "exclude": ["cars"]}),
]


def compact(understood: Understood) -> dict[str, object]:
    out: dict[str, object] = {"q": understood.q}
    if understood.date_from or understood.date_to:
        out["date"] = f"{understood.date_from or ''}/{understood.date_to or ''}"
    for field in ("place", "text", "kind", "name"):
        if getattr(understood, field):
            out[field] = getattr(understood, field)
    if understood.exclude:
        out["exclude"] = list(understood.exclude)
    if understood.tag:
        out["tag"] = list(understood.tag)
    if understood.offered:
        out["offered"] = [f"{part.field}:{part.value}" for part in understood.offered]
    return out


def test_the_table_has_enough_sentences_in_both_languages():
    chinese = [q for q, _ in TABLE if any("\u4e00" <= c <= "\u9fff" for c in q)]
    english = [q for q, _ in TABLE if q.isascii()]
    assert len(TABLE) >= 150 and len(chinese) >= 50 and len(english) >= 50
    assert len({q for q, _ in TABLE}) == len(TABLE)


@pytest.mark.parametrize(("sentence", "expected"), TABLE, ids=[q for q, _ in TABLE])
def test_sentence(sentence, expected):
    assert compact(understand(sentence, TODAY)) == expected


@pytest.mark.parametrize("sentence", ["a red car", "中国风的瓷器", "nice weather", "a nice sunset", "红色的汽车"])
def test_ordinary_sentences_parse_to_nothing(sentence):
    understood = understand(sentence, TODAY)
    assert understood == Understood(q=sentence) and not understood.anything


def test_parts_say_where_each_piece_is():
    sentence = '去年夏天在伦敦拍的视频 写着"出口" -人'
    understood = understand(sentence, TODAY)
    found = {part.field: sentence[part.start : part.end] for part in understood.parts}
    assert found == {"date": "去年夏天", "place": "在伦敦拍的", "kind": "视频", "text": '写着"出口"', "exclude": "-人"}
    assert [part.start for part in understood.parts] == sorted(part.start for part in understood.parts)
    assert understood.q == ""
    offered = understand("London bus", TODAY).offered[0]
    assert ("London bus"[offered.start : offered.end], offered.value) == ("London", "London")


def test_only_the_first_date_is_applied_the_others_are_offered():
    understood = understand("2019 and 2020 snow", TODAY)
    assert (understood.date_from, understood.date_to) == (dt.date(2019, 1, 1), dt.date(2019, 12, 31))
    assert [(part.field, part.value) for part in understood.offered] == [("date", "2020-01-01/2020-12-31")]
    assert understood.q == "2020 snow"  # an offered part is not applied: its words stay for the model


def test_southern_hemisphere_seasons():
    def days(sentence):
        understood = understand(sentence, TODAY, hemisphere="south")
        return understood.date_from.isoformat(), understood.date_to.isoformat()

    assert days("summer 2019") == ("2019-12-01", "2020-02-29")
    assert days("2019年冬天") == ("2019-06-01", "2019-08-31")
    assert days("last summer") == ("2023-12-01", "2024-02-29")
    assert days("去年秋天") == ("2023-03-01", "2023-05-31")
    with pytest.raises(ValueError, match="hemisphere"):
        understand("summer 2019", TODAY, hemisphere="east")


def test_relative_dates_follow_today():
    in_january = dt.date(2025, 1, 10)
    assert understand("last winter", in_january).date_from == dt.date(2023, 12, 1)  # this winter has not ended
    assert understand("this winter", in_january).date_from == dt.date(2024, 12, 1)
    assert understand("上个月", in_january).date_from == dt.date(2024, 12, 1)
    assert understand("last week", in_january).date_from == dt.date(2024, 12, 30)


def test_the_parser_takes_well_under_a_millisecond_a_sentence():
    vocabulary()  # built once per process (~1 s), not per sentence
    sentences = [q for q, _ in TABLE]
    started = time.perf_counter()
    for _ in range(5):
        for sentence in sentences:
            understand(sentence, TODAY)
    per_sentence = (time.perf_counter() - started) / (5 * len(sentences))
    assert per_sentence < 0.001, f"{per_sentence * 1000:.3f} ms a sentence"


def test_the_search_reads_with_the_servers_zone_and_seasons():
    from zoneinfo import ZoneInfo

    from config import Settings
    from materialsearch.organise.tags import label_set
    from materialsearch.search.understand import SentenceReader

    labels = label_set()
    for name in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):  # UTC+14 and UTC-11: a different day for hours a day
        zone = ZoneInfo(name)
        assert SentenceReader(labels, zone=zone).today() in {
            dt.datetime.now(zone).date(),
            (dt.datetime.now(zone) - dt.timedelta(seconds=5)).date(),
        }
    south = SentenceReader(labels, Settings.from_env(environ={"MS_SEASONS": "South"}).seasons)
    assert south.read("summer 2019").date_from == dt.date(2019, 12, 1)
    assert SentenceReader(labels).read("summer 2019").date_from == dt.date(2019, 6, 1)
    with pytest.raises(ValueError, match="hemisphere"):
        SentenceReader(labels, "east")
