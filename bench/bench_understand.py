#!/usr/bin/env python
"""Sentence-reading benchmark: how long the search takes to read a sentence (``understand``) before it searches.

Through the product's code, in this process:

1. building the vocabulary (the geocoder's country and city names, English and Chinese, and the label set's tag
   names): once per process and label set;
2. ``understand`` on a set of sentences, Chinese, English and mixed, with and without dates, places, quoted words,
   exclusions and kinds, each ``--repeat`` times: p50/p99/mean µs a sentence, and the slowest sentence.

    .venv/bin/python bench/bench_understand.py              # 2000 rounds
    .venv/bin/python bench/bench_understand.py --smoke      # a second

Prints a table with the load average and writes ``<out>/bench_understand.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

if not __package__:  # run as a file (python bench/bench_understand.py): import from the repository root, as -m does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, product
from bench.common import log

TODAY = dt.date(2024, 5, 15)
SENTENCES = [
    "去年夏天在海边",
    "red bus in London",
    '写着"母婴"的招牌',
    "beach -people",
    "2019年的雪景",
    "videos of fireworks",
    "a red car",
    "中国风的瓷器",
    "nice weather",
    "去年夏天在伦敦拍的视频",
    "last summer in London videos",
    "没有人的海滩",
    "street with no cars",
    "2015到2017年的北京",
    "photos from Japan between 2015 and 2017",
    "a dog running on the grass in the park at sunset without people",
    "一只在草地上奔跑的狗，夕阳下，不要人",
    "IMG_1234",
    "#cat 2021年4月",
    "Live Photo of a train in Northampton",
]


def measure(repeat: int) -> dict:
    """The vocabulary's build time and µs per sentence (p50/p99/mean over every sentence and round)."""
    build_s, words = common.timed(lambda: product.vocabulary())
    samples, slowest = [], {}
    for _ in range(repeat):
        for sentence in SENTENCES:
            started = time.perf_counter()
            product.understand(sentence, TODAY, words=words)
            took = (time.perf_counter() - started) * 1e6
            samples.append(took)
            slowest[sentence] = max(slowest.get(sentence, 0.0), took)
    worst = max(slowest, key=slowest.get)
    return {
        "vocabulary_s": round(build_s, 2),
        "places": len(words.places),
        "sentences": len(SENTENCES),
        "rounds": repeat,
        "us": common.percentiles(samples, points=(50, 99), digits=1),
        "slowest_sentence": worst,
    }


def render(report: dict) -> str:
    result = report["result"]
    lines = [
        f"sentence-reading benchmark: load average {report['load_average']}; {report['cpu']}",
        f"vocabulary: {result['places']:,} place names, built in {result['vocabulary_s']} s (once per process)",
        "",
    ]
    us = result["us"]
    rows = [("understand(sentence)", result["sentences"] * result["rounds"], us["p50"], us["p99"], us["mean"])]
    lines += common.text_table(("what", "runs", "p50 µs", "p99 µs", "mean µs"), rows, "<>>>>")
    lines.append(f"slowest sentence: {result['slowest_sentence']!r}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2000, help="rounds over the sentences (default 2000)")
    parser.add_argument("--smoke", action="store_true", help="a few rounds: a second")
    common.add_place_arguments(parser, "bench_understand.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeat = 20
    log(f"reading {len(SENTENCES)} sentences {args.repeat} times")
    report = {
        "when": common.now_iso(),
        "smoke": args.smoke,
        "load_average": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "cpu": common.cpu_model(),
        "result": measure(args.repeat),
    }
    common.publish(args.out, "bench_understand.json", report, render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
