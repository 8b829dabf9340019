"""Two app instances starting at the same instant on one PostgreSQL catalog (issue 20, item 5): exactly one owns it
(scans and schedules), the other only searches and names the owner; when the owner is SIGKILLed, PostgreSQL drops
its session and with it the advisory lock, and the other takes over on its next start.

Each instance is a process of its own (spawned: a fresh interpreter, as a second host would run), with its own data
dir and the same ``MS_DATABASE_URL``; both build the app as ``serve`` does (``create_app``, then
``start_background``) right after a shared barrier lets them go, so the two race for the lock. The race is run
several times; a catalog in another database of the same server is owned meanwhile, so naming the owner must look
at this catalog's database only.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time

import pytest

from materialsearch.catalog.ownership import OWNER_LOCK
from tests.conftest import MEDIA, settings_on

ROUNDS = 10  # each race after the first costs well under a second
WAIT_S = 180  # spawning imports torch and the app: seconds, more on a loaded machine


def _instance(name: str, overrides: dict, barrier, pipe) -> None:
    """One app instance (in a spawned process), told what to do through ``pipe``: ``race`` (wait at the barrier,
    then start), ``start`` (start now), ``close``, ``quit``. After a start it reports what it is."""
    from materialsearch.web import create_app, services_of

    settings = settings_on(overrides.pop("data_dir"), overrides.pop("model"), **overrides)
    services = None
    while True:
        try:
            order = pipe.recv()
        except (EOFError, OSError):  # the test is gone
            order = "quit"
        if order == "quit":
            return
        if order == "close":
            services.close()
            services = None
            pipe.send("closed")
            continue
        if order == "race":
            barrier.wait(timeout=WAIT_S)
        app = create_app(settings)
        services = services_of(app)
        services.start_background()
        scan = app.test_client().get("/api/status").get_json()["scan"]
        refused = None if services.owner else services.scans.try_start("manual")
        pipe.send({"name": name, "pid": os.getpid(), "owner": services.owner, "scan": scan, "refused": refused})


def _owner_sessions(url: str) -> int:
    """How many sessions hold the owner's advisory lock of ``url``'s database."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = %s"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (OWNER_LOCK,),
        ).fetchone()[0]


def _wait_for_no_owner(url: str, failure: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while _owner_sessions(url):
        assert time.monotonic() < deadline, failure
        time.sleep(0.05)


def _check_round(reports: list[dict]) -> tuple[dict, dict]:
    """Exactly one owner, scanning and scheduling; the other refuses to scan and names the owner's process."""
    owners = [report for report in reports if report["owner"]]
    assert len(owners) == 1, reports
    (owner,) = owners
    (other,) = [report for report in reports if not report["owner"]]
    assert owner["scan"]["can_scan"] and owner["scan"]["schedule"]["active"] and owner["scan"]["refusal"] is None
    assert not other["scan"]["can_scan"] and not other["scan"]["schedule"]["active"]
    named = f"pid {owner['pid']} owns the PostgreSQL catalog"
    assert named in other["scan"]["refusal"] and named in other["refused"], (owner, other)
    return owner, other


@pytest.mark.slow
def test_two_instances_starting_at_once_one_owns_and_the_other_takes_over_when_it_dies(postgres, tiny_model, tmp_path):
    from materialsearch.services import Services

    library = tmp_path / "library"
    library.mkdir()
    shutil.copy2(MEDIA / "jpg_orient1.jpg", library / "jpg_orient1.jpg")
    url = postgres()
    # Another catalog on the same server, owned all along by this process: not the one the instances share.
    elsewhere = Services(settings_on(tmp_path / "elsewhere", tiny_model, database_url=postgres()))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    instances = {}
    try:
        assert elsewhere.owner
        for name in ("a", "b"):
            ours, theirs = context.Pipe()
            overrides = {
                "data_dir": str(tmp_path / name),  # one data dir each, as on two hosts
                "model": tiny_model,
                "database_url": url,
                "library": str(library),
                "scan_on_start": False,
                "scan_interval": "1d",  # a schedule: its owner's scheduler runs
            }
            process = context.Process(target=_instance, args=(name, overrides, barrier, theirs), daemon=True)
            process.start()
            theirs.close()  # the child's end is the child's: should this process die, the child reads the end
            instances[name] = (process, ours)

        def ask(name: str, order: str):
            _process, pipe = instances[name]
            pipe.send(order)
            assert pipe.poll(WAIT_S), f"instance {name} did not answer {order!r}"
            return pipe.recv()

        def race() -> list[dict]:
            for _process, pipe in instances.values():
                pipe.send("race")
            reports = []
            for name, (_process, pipe) in instances.items():
                assert pipe.poll(WAIT_S), f"instance {name} did not start"
                reports.append(pipe.recv())
            return reports

        winners = []
        for _ in range(ROUNDS):
            owner, _other = _check_round(race())
            winners.append(owner["name"])
            assert _owner_sessions(url) == 1
            for name in instances:
                assert ask(name, "close") == "closed"
            # A clean close gives the lock back (the server ends the closed session a moment after the client).
            _wait_for_no_owner(url, "PostgreSQL kept a closed owner's lock")

        # Once more, and the owner dies without closing anything (SIGKILL): its session goes, with the lock.
        owner, other = _check_round(race())
        process, _pipe = instances[owner["name"]]
        process.kill()
        process.join(WAIT_S)
        _wait_for_no_owner(url, "PostgreSQL kept the killed owner's lock")
        assert ask(other["name"], "close") == "closed"
        again = ask(other["name"], "start")  # its next start
        assert again["owner"] and again["scan"]["can_scan"] and again["scan"]["schedule"]["active"], again
        assert _owner_sessions(url) == 1
        assert ask(other["name"], "close") == "closed"
        print(f"race winners: {[*winners, owner['name']]}")
    finally:
        for process, pipe in instances.values():
            if process.is_alive():
                pipe.send("quit")
                process.join(30)
            if process.is_alive():
                process.kill()
        elsewhere.close()
