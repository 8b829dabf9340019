"""Videos end to end: PTS sampling on real and synthetic files, moments in search, frame-accurate clips,
HTTP Range, renditions, Live Photos and motion photos — real PyAV, ffmpeg, SQLite, FAISS and the tiny cn_clip."""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess
import time

import av
import numpy as np
import pytest
from PIL import Image

from materialsearch.media.transcode import ffmpeg_executable
from materialsearch.media.video import VideoError, frame_at, probe, sample_frames
from materialsearch.web import services_of
from tests.conftest import MEDIA, VIDEO_EXTENSIONS, manifest
from tests.videos import counter_video, read_counter, scene_times, scene_video

SCENE_PHOTOS = ["jpg_orient1.jpg", "webp_lossy_photo.webp", "bmp_24bit.bmp", "jpg_grayscale_concert.jpg"]
SCENE_LENGTHS = [6.0, 6.0, 6.0, 6.0]
INTERVAL_S = 1.0


def ffmpeg_first_frame(path) -> Image.Image:
    """The first frame as ffmpeg shows it (rotation metadata applied by ffmpeg itself)."""
    png = subprocess.run(
        [ffmpeg_executable(), "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return Image.open(io.BytesIO(png)).convert("RGB")


# --- decoding ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "mp4_portrait_4k60_h264_rot90_0.3s.mp4",
        "MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV",
        "mp4_pixel7_h264_noaudio_rot180.mp4",
    ],
)
def test_rotation_metadata_is_applied_once(name):
    path = MEDIA / name
    info = probe(str(path))
    frame = next(iter(sample_frames(str(path), 2000, min_side=224)))
    reference = np.asarray(ffmpeg_first_frame(path).resize(frame.image.size), dtype=np.float32)
    assert (
        (info.width > info.height)
        == (frame.image.width > frame.image.height)
        == (reference.shape[1] > reference.shape[0])
    )
    errors = {}
    for turn in (0, 90, 180, 270):
        candidate = frame.image.rotate(turn, expand=True)
        if candidate.size != frame.image.size:
            continue
        errors[turn] = np.abs(np.asarray(candidate, dtype=np.float32) - reference).mean()
    assert min(errors, key=errors.get) == 0, errors


def test_every_real_video_decodes_with_its_facts():
    hevc = probe(str(MEDIA / "MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV"))
    assert (hevc.codec, hevc.width, hevc.height, hevc.browser_playable) == ("hevc", 720, 1280, False)
    assert hevc.created_at is not None and hevc.created_at.year == 2023
    live = probe(str(MEDIA / "livephoto_iphone6s_train.mov"))
    assert live.content_identifier == "E905E6C6-C747-4805-942F-9904A0281F02" and live.browser_playable
    assert probe(str(MEDIA / "webm_vp9_noaudio.webm")).browser_playable
    assert not probe(str(MEDIA / "avi_mpeg4_mp3.avi")).browser_playable
    # Very short clips still give one frame; a tail-truncated file still decodes.
    assert len(list(sample_frames(str(MEDIA / "MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV"), 2000))) == 1
    assert len(list(sample_frames(str(MEDIA / "bad_mp4_mdat_past_eof.mp4"), 500))) == 2


def test_sampling_follows_presentation_time_not_declared_rate(tmp_path):
    # Variable frame rate, and a container that declares 1000 fps: frame-count arithmetic would drift.
    path = tmp_path / "vfr.mkv"
    pictures = [Image.open(MEDIA / name) for name in SCENE_PHOTOS]
    scene_video(str(path), pictures, SCENE_LENGTHS, declared_rate=1000)
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == 1000
    frame_times = [t for t, _scene in scene_times(SCENE_LENGTHS)]
    sampled = [f.time_ms for f in sample_frames(str(path), 2000)]
    assert len(sampled) == 12
    for i, time_ms in enumerate(sampled):
        # Each sample is the first real frame at or after i * 2 s.
        expected = min(t for t in frame_times if t >= i * 2 - 1e-9)
        assert time_ms == round(expected * 1000)


def test_sampling_decodes_only_what_it_needs(tmp_path):
    path = tmp_path / "counter.mp4"
    counter_video(str(path), 250, fps=25, gop=25, audio=False)  # 10 s, a keyframe every second
    stats: dict = {}
    frames = list(sample_frames(str(path), 2000, min_side=32, stats=stats))
    assert [f.time_ms for f in frames] == [0, 2000, 4000, 6000, 8000]
    assert [read_counter(f.image) for f in frames] == [0, 50, 100, 150, 200]  # the exact frame at each time
    assert stats["packets"] == 250 and stats["decoded"] <= 10  # one GOP start per sample, not every frame


def test_frames_nothing_refers_to_are_never_decoded(tmp_path):
    # One keyframe in 10 s and two B-frames (never referred to) after each P-frame: to reach each sample the run
    # before it must be decoded (as in a 6-min 4K60 AV1 with a keyframe every 5.35 s), minus the B-frames.
    path = tmp_path / "long_gop.mp4"
    counter_video(str(path), 250, fps=25, gop=250, audio=False, options={"bf": "2", "x264-params": "b-pyramid=none"})
    stats: dict = {}
    frames = list(sample_frames(str(path), 2000, min_side=32, stats=stats))
    assert stats["decoded"] < 0.5 * 200, stats  # ~1/3 of the 200 frames up to the last sample at 8 s
    for i, frame in enumerate(frames):
        # Each sample is the first reference frame at or after i * 2 s: at most two frames later, and the picture
        # shown at the time given.
        assert i * 2000 <= frame.time_ms <= i * 2000 + 80
        assert read_counter(frame.image) == frame.time_ms // 40
    assert len(frames) == 5


def test_undecodable_videos_say_why(tmp_path):
    text = tmp_path / "spoof.mp4"
    text.write_bytes(b"not a video at all")
    with pytest.raises(VideoError, match="not a readable video"):
        probe(str(text))
    zeroed = tmp_path / "zeroed.mp4"
    data = bytearray((MEDIA / "bad_mp4_mdat_past_eof.mp4").read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 4 :] = bytes(len(data) - mdat - 4)  # the media data is gone, the index still points at it
    zeroed.write_bytes(bytes(data))
    with pytest.raises(VideoError, match="no decodable video frame"):
        list(sample_frames(str(zeroed), 1000))


# --- scanning and searching -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def video_app(scanned_app, tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    library = root / "library"
    library.mkdir()
    pictures = [Image.open(MEDIA / name) for name in SCENE_PHOTOS]
    scene_video(str(library / "scenes.mp4"), pictures, SCENE_LENGTHS, size=(384, 288))
    counter_video(str(library / "counter.mp4"), 250, fps=25, gop=50)
    for name in [
        "jpg_orient1.jpg",
        "livephoto_iphone6s_train.jpg",
        "livephoto_iphone6s_train.mov",
        "MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV",
        "heic_android_motionphoto.heic",
        "bad_mp4_mdat_past_eof.mp4",
    ]:
        shutil.copy2(MEDIA / name, library / name)
    shutil.copy2(MEDIA / "livephoto_iphone6s_train.mov", library / "lonely_movie.mov")  # no still: a video
    (library / "spoof.mov").write_bytes(b"A text file, not a movie")
    app = scanned_app(library, frame_interval=INTERVAL_S)
    scan = services_of(app).scans.last
    assert scan["stats"]["errors"] == 1, scan["summary"]
    return app, library


def by_name(results, name):
    return [r for r in results if r["name"] == name]


def test_image_query_lands_on_the_right_moment(video_app):
    app, _library = video_app
    client = app.test_client()
    for scene, name in enumerate(SCENE_PHOTOS):
        data = (MEDIA / name).read_bytes()
        body = client.post("/api/search", data={"image": (io.BytesIO(data), name), "kind": "video"}).json
        best = body["results"][0]
        assert best["name"] == "scenes.mp4" and best["kind"] == "video", best
        start, end = sum(SCENE_LENGTHS[:scene]), sum(SCENE_LENGTHS[: scene + 1])
        # The moment lies within the scene, give or take one sampling interval.
        assert start - INTERVAL_S <= best["start"] <= best["time"] <= best["end"] <= end + INTERVAL_S, best
        assert best["end"] - best["start"] >= INTERVAL_S
        assert client.get(best["thumbnail_url"]).mimetype == "image/jpeg"


def test_moments_of_one_video_are_separate_hits_mixed_with_photos(video_app):
    app, _library = video_app
    body = app.test_client().get("/api/search", query_string={"q": "孩子吹蜡烛", "limit": 100}).json
    kinds = {r["kind"] for r in body["results"]}
    assert kinds == {"image", "video"}
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    for result in body["results"]:
        if result["kind"] == "video":
            assert {"start", "end", "time", "clip_url", "play_url", "duration"} <= set(result)
    moments = by_name(body["results"], "scenes.mp4")
    spans = sorted((m["start"], m["end"]) for m in moments)
    assert all(a_end <= b_start for (_a, a_end), (b_start, _b) in itertools.pairwise(spans))


def test_clip_is_frame_accurate_h264_aac(video_app, tmp_path):
    app, _library = video_app
    client = app.test_client()
    counter = by_name(
        client.get("/api/search", query_string={"q": "数字", "limit": 100, "kind": "video"}).json["results"],
        "counter.mp4",
    )[0]
    response = client.get(f"/api/items/{counter['id']}/clip", query_string={"start": "3.3", "end": "5.1"})
    assert response.status_code == 200 and response.mimetype == "video/mp4"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(response.data)
    with av.open(str(clip)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        frames = list(container.decode(video=0))
    # Frame i is shown from i/25 s: the clip starts at the first frame at or after 3.3 s (i = 83) and ends
    # before 5.1 s (i = 127); a keyframe copy would start at frame 50.
    assert read_counter(frames[0].to_image()) == 83
    assert read_counter(frames[-1].to_image()) == 127
    again = client.get(f"/api/items/{counter['id']}/clip", query_string={"start": "3.3", "end": "5.1"})
    assert again.data == response.data  # served from the cache


def test_clip_and_thumbnail_reject_bad_parameters(video_app):
    app, _library = video_app
    client = app.test_client()
    video = client.get("/api/search", query_string={"q": "x", "kind": "video"}).json["results"][0]
    url = f"/api/items/{video['id']}/clip"
    for params in [
        {},
        {"start": "1"},
        {"start": "a", "end": "2"},
        {"start": "2", "end": "1"},
        {"start": "-1", "end": "1"},
        {"start": "999", "end": "1000"},
        {"start": "nan", "end": "1"},
    ]:
        response = client.get(url, query_string=params)
        assert response.status_code == 400, (params, response.json)
    photo = client.get("/api/search", query_string={"q": "x", "kind": "image"}).json["results"][0]
    assert client.get(f"/api/items/{photo['id']}/clip", query_string={"start": 0, "end": 1}).status_code == 400
    assert client.get(f"/api/items/{video['id']}/thumbnail", query_string={"t": "123457"}).status_code == 404
    assert client.get(f"/api/items/{video['id']}/thumbnail", query_string={"t": "x"}).status_code == 400


def test_original_file_supports_range_requests(video_app):
    app, _library = video_app
    client = app.test_client()
    video = by_name(
        client.get("/api/search", query_string={"q": "x", "kind": "video", "limit": 50}).json["results"], "scenes.mp4"
    )[0]
    response = client.get(video["file_url"], headers={"Range": "bytes=100-199"})
    assert response.status_code == 206 and len(response.data) == 100
    assert response.headers["Content-Range"].startswith("bytes 100-199/")
    assert video["play_url"] == video["file_url"]  # H.264 MP4 plays as it is


def test_hevc_gets_an_h264_rendition(video_app, tmp_path):
    app, _library = video_app
    client = app.test_client()
    hevc = by_name(
        client.get("/api/search", query_string={"q": "x", "kind": "video", "limit": 50}).json["results"],
        "MOV_iphone14pro_hevc_dolbyvision_rot90_0.1s.MOV",
    )[0]
    assert hevc["playable"] is False and hevc["play_url"] != hevc["file_url"]
    deadline = time.monotonic() + 60
    while (response := client.get(hevc["play_url"])).status_code == 202:
        assert response.headers["Retry-After"] and time.monotonic() < deadline
        time.sleep(0.2)
    assert response.status_code == 200 and response.mimetype == "video/mp4"
    rendition = tmp_path / "rendition.mp4"
    rendition.write_bytes(response.data)
    info = probe(str(rendition))
    assert (info.codec, info.browser_playable, info.width < info.height) == ("h264", True, True)


def test_live_photo_is_one_item_with_playable_motion(video_app):
    app, _library = video_app
    client = app.test_client()
    results = client.get("/api/search", query_string={"q": "train", "limit": 100}).json["results"]
    names = [r["name"] for r in results]
    assert "livephoto_iphone6s_train.mov" not in names  # never a separate video result
    assert "lonely_movie.mov" in names  # the same movie without a still is a normal video
    still = by_name(results, "livephoto_iphone6s_train.jpg")[0]
    assert still["live"] is True and still["motion_url"]
    motion = client.get(still["motion_url"])
    assert motion.status_code == 200 and motion.mimetype == "video/mp4"
    assert motion.data[4:8] == b"ftyp"
    plain = by_name(results, "jpg_orient1.jpg")[0]
    assert plain["live"] is False and plain["motion_url"] is None
    status = client.get("/api/status").json["counts"]
    assert status["live_photos"] == 1


def test_motion_photo_plays_its_embedded_video(video_app, tmp_path):
    app, _library = video_app
    client = app.test_client()
    results = client.get("/api/search", query_string={"q": "x", "kind": "image", "limit": 100}).json["results"]
    photo = by_name(results, "heic_android_motionphoto.heic")[0]
    assert photo["motion_photo"] is True and photo["live"] is False
    response = client.get(photo["motion_url"])
    assert response.status_code == 200 and response.mimetype == "video/mp4"
    motion = tmp_path / "motion.mp4"
    motion.write_bytes(response.data)
    assert probe(str(motion)).codec == "h264"


def test_broken_videos_are_listed_with_reasons(video_app):
    app, _library = video_app
    errors = app.test_client().get("/api/errors").json["errors"]
    assert [(e["path"].rsplit("/", 1)[-1], e["kind"]) for e in errors] == [("spoof.mov", "video")]
    assert "not a readable video" in errors[0]["reason"]


def test_live_photo_pairing_follows_the_library(open_services, tmp_path):
    library = tmp_path / "lib"
    library.mkdir()
    shutil.copy2(MEDIA / "livephoto_iphone6s_train.jpg", library / "IMG_1.jpg")
    shutil.copy2(MEDIA / "livephoto_iphone6s_train.mov", library / "IMG_1.MOV")
    counter_video(str(library / "IMG_2.mp4"), 200, fps=25, gop=50, audio=False)  # 8 s, no identifier
    shutil.copy2(MEDIA / "jpg_orient1.jpg", library / "IMG_2.jpg")
    services = open_services(library=str(library))
    services.scans.run()
    states = services.store.file_states()
    assert states[str(library / "IMG_1.MOV")].status == "motion"
    assert states[str(library / "IMG_2.mp4")].status == "ok"  # too long to be a Live Photo without identifiers
    (library / "IMG_1.jpg").unlink()
    stats = services.scans.run()
    assert services.store.file_states()[str(library / "IMG_1.MOV")].status == "ok"  # now a video of its own
    assert stats.removed == 1 and stats.updated == 1
    second = services.scans.run()
    assert second.decoded == 0 and second.unchanged == 3


def test_a_live_photo_movie_moved_away_from_its_still_becomes_a_video_of_its_own(open_services, tmp_path):
    """Its content matches the vanished motion item, but a movie without its still is a video: the motion item is
    removed in the same scan and the movie indexed anew (its frames embedded), not re-pointed as motion."""
    library = tmp_path / "lib"
    (library / "elsewhere").mkdir(parents=True)
    shutil.copy2(MEDIA / "livephoto_iphone6s_train.jpg", library / "IMG_1.jpg")
    shutil.copy2(MEDIA / "livephoto_iphone6s_train.mov", library / "IMG_1.MOV")
    services = open_services(library=str(library))
    services.scans.run()
    (library / "IMG_1.MOV").rename(library / "elsewhere" / "IMG_1.MOV")
    stats = services.scans.run()
    states = services.store.file_states()
    assert str(library / "IMG_1.MOV") not in states
    assert states[str(library / "elsewhere" / "IMG_1.MOV")].status == "ok"
    assert (stats.moved, stats.removed, stats.added) == (0, 1, 1)
    assert services.index.ntotal == services.store.vector_checksum()[0]
    second = services.scans.run()
    assert second.decoded == 0 and (second.unchanged, second.removed) == (2, 0)


SAMPLE_VIDEOS = sorted(
    row["file"]
    for row in manifest()
    if row["decodes_ok"] == "yes" and any(row["file"].lower().endswith(ext) for ext in VIDEO_EXTENSIONS)
)


@pytest.mark.parametrize("name", SAMPLE_VIDEOS)
def test_every_sampled_frame_of_a_sample_video_can_be_shown_again(name):
    """A moment's thumbnail is the frame at its time, found by seeking: every time the scan samples must give a
    frame (an AVCHD stream's first frames come before its declared start, where seeking finds nothing)."""
    path = str(MEDIA / name)
    times = [frame.time_ms for frame in sample_frames(path, 2000)]
    assert times
    for time_ms in times:
        assert frame_at(path, time_ms).size[0] > 0, (name, time_ms)
