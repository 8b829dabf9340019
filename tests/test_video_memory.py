"""Decoding a huge video holds a bounded number of frames, however many cores the machine has."""

from __future__ import annotations

import av

from materialsearch import video
from materialsearch.video import FRAME_THREADS_BUDGET_BYTES, decoder_threads


def test_large_frames_get_few_decoder_threads():
    assert decoder_threads(7680, 4320, cpus=16) == 2  # 8K: ~100 MB a frame
    assert decoder_threads(3840, 2160, cpus=16) == 10  # 4K
    assert decoder_threads(1920, 1080, cpus=16) == 16  # 1080p keeps every core
    assert decoder_threads(1920, 1080, cpus=2) == 2
    assert decoder_threads(16000, 16000, cpus=64) == 1  # never zero (0 means "one per core" to FFmpeg)
    assert decoder_threads(0, 0, cpus=4) == 4  # size unknown before decoding: the cores decide
    for width, height in [(7680, 4320), (3840, 2160)]:
        threads = decoder_threads(width, height, cpus=64)
        assert threads * width * height * 3 <= FRAME_THREADS_BUDGET_BYTES


def test_the_sampler_applies_the_bound_to_the_real_decoder(media_dir, monkeypatch):
    seen = []
    original = video._bound_decoder_threads

    def spy(stream):
        original(stream)
        seen.append((stream.codec_context.width, stream.codec_context.thread_count, stream.thread_type))

    monkeypatch.setattr(video, "_bound_decoder_threads", spy)
    monkeypatch.setattr(video.os, "cpu_count", lambda: 64)
    path = str(media_dir / "mp4_portrait_4k60_h264_rot90_0.3s.mp4")
    video.probe(path)
    assert list(video.sample_frames(path, 2000))
    assert seen == [(3840, 10, av.codec.context.ThreadType.AUTO)] * 2
