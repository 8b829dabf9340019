"""`GET /api/search` and `POST /api/search` read `q` as a sentence: the shared media's located and dated files are
found through the filters by place and date words in English and Chinese, `understood` says what was read, the
caller's own parameters win, and `parse=false` sends the sentence to the model as it is."""

from __future__ import annotations

import io
import shutil

import pytest

# Located (tests/test_places.py checks where) and dated files of the shared media, and two with neither.
NIKON = "jpeg_nikon_d5000_gps.jpeg"  # Khujirt, Mongolia; taken 2011-08-17
LONDON_MOV = "MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV"  # London
SPAIN = "heic_iphone12pro_orient6_irot_gps.heic"  # Calonge, Catalonia
TRAIN = "livephoto_iphone6s_train.jpg"  # an iPhone Live Photo (its movie is its companion): Northampton, England;
# taken 2021-04-10
PLAIN = "jpg_orient1.jpg"
FILES = [NIKON, LONDON_MOV, SPAIN, PLAIN, TRAIN, "livephoto_iphone6s_train.mov"]


@pytest.fixture(scope="module")
def client(scanned_app, media_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("understand") / "library"
    root.mkdir()
    for name in FILES:
        shutil.copy2(media_dir / name, root / name)
    return scanned_app(root, decode_threads=1).test_client()


def search(client, **params):
    response = client.get("/api/search", query_string={"limit": 50, **params})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def names(body) -> set[str]:
    return {hit["name"] for hit in body["results"]}


@pytest.mark.parametrize(
    ("sentence", "place", "expected"),
    [
        ("photos in Mongolia", "Mongolia", {NIKON}),
        ("在蒙古拍的照片", "蒙古", {NIKON}),
        ("蒙古", "蒙古", {NIKON}),
        ("videos from London", "London", {LONDON_MOV}),
        ("伦敦的视频", "伦敦", {LONDON_MOV}),
        ("in London", "London", {LONDON_MOV}),
        ("英国", "英国", {LONDON_MOV, TRAIN}),
        ("photos in the UK", "United Kingdom", {TRAIN}),
        ("Live Photo in Northampton", "Northampton", {TRAIN}),
        ("北安普顿的实况照片", "北安普顿", {TRAIN}),
        ("Spain", "Spain", {SPAIN}),
    ],
)
def test_place_words_find_the_located_files(client, sentence, place, expected):
    body = search(client, q=sentence)
    assert names(body) == expected
    assert body["understood"]["place"] == place and body["understood"]["q"] == ""
    assert [part["field"] for part in body["understood"]["parts"]].count("place") == 1


@pytest.mark.parametrize(
    ("sentence", "expected", "taken"),
    [
        ("2011年8月", NIKON, "2011-08-17"),
        ("August 2011", NIKON, "2011-08-17"),
        ("2011", NIKON, "2011-08-17"),
        ("summer 2011", NIKON, "2011-08-17"),
        ("2011年夏天", NIKON, "2011-08-17"),
        ("2021年4月的实况照片", TRAIN, "2021-04-10"),
        ("spring 2021", TRAIN, "2021-04-10"),
    ],
)
def test_date_words_find_the_dated_photo(client, sentence, expected, taken):
    body = search(client, q=sentence)
    assert names(body) == {expected}
    assert body["understood"]["date_from"] <= taken <= body["understood"]["date_to"]


def test_place_and_date_and_words_together(client):
    body = search(client, q="2011年在蒙古的草原")
    understood = body["understood"]
    assert (understood["date_from"], understood["date_to"]) == ("2011-01-01", "2011-12-31")
    assert (understood["place"], understood["q"]) == ("蒙古", "草原")
    assert names(body) == {NIKON}  # ranked by the model among the filtered items
    assert names(search(client, q="2012年在蒙古的草原")) == set()


def test_a_sentence_of_filters_only_answers_newest_first(client):
    body = search(client, q="照片")
    assert body["understood"]["kind"] == "image" and body["understood"]["q"] == ""
    assert LONDON_MOV not in names(body) and NIKON in names(body)
    dates = [hit["taken_at"] for hit in body["results"] if hit.get("taken_at")]
    assert dates == sorted(dates, reverse=True)


def test_understood_reports_every_field_with_offsets(client):
    sentence = '去年夏天在伦敦拍的视频 写着"出口" -人 #cat'
    understood = search(client, q=sentence)["understood"]
    assert understood["kind"] == "video" and understood["place"] == "伦敦" and understood["text"] == "出口"
    assert understood["exclude"] == ["人"] and understood["tag"] == ["cat"] and understood["q"] == ""
    for part in understood["parts"]:
        assert sentence[part["start"] : part["end"]].strip()
    assert {part["field"] for part in understood["parts"]} == {"date", "place", "kind", "text", "exclude", "tag"}


def test_ordinary_sentences_are_not_touched(client):
    for sentence in ["a red car", "中国风的瓷器", "nice weather"]:
        understood = search(client, q=sentence)["understood"]
        assert understood["q"] == sentence and understood["parts"] == [] and understood["place"] is None


def test_an_uncertain_place_is_offered_not_applied(client):
    body = search(client, q="London bus")
    assert body["understood"]["place"] is None and body["understood"]["q"] == "London bus"
    assert body["understood"]["offered"] == [{"field": "place", "value": "London", "start": 0, "end": 6}]
    assert len(body["results"]) == len(FILES) - 1  # nothing filtered (the Live Photo's movie goes with its still)


def test_explicit_parameters_win_over_the_sentence(client):
    body = search(client, q="photos in Mongolia", place="英国")
    assert names(body) == {TRAIN}  # the London file is a video: kind=image from the sentence still applies
    assert body["understood"]["place"] is None and body["understood"]["kind"] == "image"
    body = search(client, q="videos in Mongolia", place="英国")
    assert names(body) == {LONDON_MOV} and [part["field"] for part in body["understood"]["parts"]] == ["kind"]
    body = search(client, q="photos in Mongolia", kind="video")  # the kind given wins, the place read applies
    assert names(body) == set() and [part["field"] for part in body["understood"]["parts"]] == ["place"]
    body = search(client, q="2011", date_to="2010-12-31")
    assert body["understood"]["date_from"] is None and body["understood"]["parts"] == [] and names(body) == set()


def test_parse_false_sends_the_sentence_as_it_is(client):
    body = search(client, q="photos in Mongolia", parse="false")
    assert "understood" not in body and len(body["results"]) == len(FILES) - 1
    assert client.get("/api/search", query_string={"q": "x", "parse": "maybe"}).status_code == 400


def test_a_picture_with_words_reads_them_too(client, media_dir):
    picture = (media_dir / PLAIN).read_bytes()
    response = client.post(
        "/api/search", data={"image": (io.BytesIO(picture), "query.jpg"), "q": "在蒙古", "limit": "50"}
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert names(body) == {NIKON} and body["understood"]["place"] == "蒙古"
    response = client.post(
        "/api/search", data={"image": (io.BytesIO(picture), "query.jpg"), "q": "在蒙古", "parse": "false"}
    )
    assert len(response.get_json()["results"]) == len(FILES) - 1


def test_a_picture_keeps_quoted_words_as_words(client, media_dir):
    picture = (media_dir / PLAIN).read_bytes()
    form = {"image": (io.BytesIO(picture), "query.jpg"), "q": '写着"出口"的 2011年', "limit": "50"}
    body = client.post("/api/search", data=form).get_json()
    understood = body["understood"]
    assert understood["text"] is None and understood["q"] == "出口"  # no text filter for a picture search
    assert [part["field"] for part in understood["parts"]] == ["date"] and names(body) == {NIKON}
