"""Schedules (cron, friendly specs, time zones, DST) and the persistent scheduler on an injected
clock: once per slot, one catch-up run after downtime, restarts mid-run, racing instances."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from imagedex.errors import ConfigError
from imagedex.scheduling.schedule import Schedule
from imagedex.scheduling.scheduler import LEASE_SECONDS, Scheduler

PARIS = ZoneInfo("Europe/Paris")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def runs(spec: str, tz: str, start: datetime, count: int) -> list[datetime]:
    schedule = Schedule.parse(spec, tz)
    found, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


# -- Schedule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "tz", "start", "expected"),
    [
        ("hourly", "UTC", utc(2026, 3, 2, 9, 0), utc(2026, 3, 2, 10, 0)),
        ("hourly@15", "UTC", utc(2026, 3, 2, 9, 20), utc(2026, 3, 2, 10, 15)),
        ("daily", "UTC", utc(2026, 3, 2, 9, 0), utc(2026, 3, 3, 0, 0)),
        ("daily@08:00", "Europe/Paris", utc(2026, 3, 2, 6, 0), utc(2026, 3, 2, 7, 0)),
        ("daily@08:00", "Europe/Paris", utc(2026, 7, 2, 6, 0), utc(2026, 7, 3, 6, 0)),  # CEST
        ("daily@8:05", "America/New_York", utc(2026, 1, 5, 0, 0), utc(2026, 1, 5, 13, 5)),
        ("weekly@mon 08:00", "UTC", utc(2026, 3, 4, 0, 0), utc(2026, 3, 9, 8, 0)),  # Wed -> Mon
        ("weekly@sunday 23:30", "UTC", utc(2026, 3, 2, 0, 0), utc(2026, 3, 8, 23, 30)),
        ("monthly@1 08:00", "UTC", utc(2026, 3, 1, 8, 0), utc(2026, 4, 1, 8, 0)),
        ("monthly@15 06:00", "Asia/Tokyo", utc(2026, 12, 20, 0, 0), utc(2027, 1, 14, 21, 0)),
        ("0 8 * * 1-5", "UTC", utc(2026, 3, 6, 9, 0), utc(2026, 3, 9, 8, 0)),  # Fri -> Mon
        ("*/15 * * * *", "UTC", utc(2026, 3, 2, 9, 7), utc(2026, 3, 2, 9, 15)),
        ("30 5 29 2 *", "UTC", utc(2026, 3, 1, 0, 0), utc(2028, 2, 29, 5, 30)),  # leap day
        ("0 9 * * *", "Asia/Kolkata", utc(2026, 3, 2, 0, 0), utc(2026, 3, 2, 3, 30)),  # +05:30
    ],
)
def test_next_after(spec: str, tz: str, start: datetime, expected: datetime) -> None:
    got = Schedule.parse(spec, tz).next_after(start)
    assert got == expected and got.tzinfo == UTC


def test_next_after_is_strictly_after_and_accepts_any_aware_zone() -> None:
    schedule = Schedule.parse("daily@08:00", "Europe/Paris")
    slot = utc(2026, 3, 2, 7, 0)
    assert schedule.next_after(slot) == utc(2026, 3, 3, 7, 0)
    assert schedule.next_after(slot.astimezone(PARIS) - timedelta(seconds=1)) == slot
    with pytest.raises(ValueError, match="aware"):
        schedule.next_after(datetime(2026, 3, 2))


def test_daily_0230_across_spring_forward_in_paris_runs_once_that_day() -> None:
    # 2026-03-29: clocks jump from 02:00 to 03:00; 02:30 does not exist
    found = runs("daily@02:30", "Europe/Paris", utc(2026, 3, 27, 12, 0), 4)
    local = [f.astimezone(PARIS) for f in found]
    assert [d.date().day for d in local] == [28, 29, 30, 31]  # one run per day, none skipped
    assert [d.strftime("%H:%M") for d in local] == ["02:30", "03:30", "02:30", "02:30"]
    assert found[1] == utc(2026, 3, 29, 1, 30)


def test_daily_0230_across_fall_back_in_paris_runs_once() -> None:
    # 2026-10-25: clocks go back from 03:00 to 02:00; 02:30 happens twice
    found = runs("daily@02:30", "Europe/Paris", utc(2026, 10, 23, 12, 0), 4)
    assert found == [
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),  # the first 02:30 (CEST) only
        utc(2026, 10, 26, 1, 30),
        utc(2026, 10, 27, 1, 30),
    ]


def test_daily_0130_across_fall_back_in_new_york_runs_once() -> None:
    # 2026-11-01: 01:00-02:00 happens twice in New York
    found = runs("daily@01:30", "America/New_York", utc(2026, 10, 31, 12, 0), 3)
    assert found == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)]


def test_hourly_follows_real_hours_through_both_dst_changes() -> None:
    spring = runs("hourly", "Europe/Paris", utc(2026, 3, 28, 23, 30), 4)
    assert spring == [utc(2026, 3, 29, h) for h in (0, 1, 2, 3)]  # no gap, no duplicate
    autumn = runs("hourly", "Europe/Paris", utc(2026, 10, 24, 22, 30), 5)
    assert autumn == [utc(2026, 10, 24, 23)] + [utc(2026, 10, 25, h) for h in (0, 1, 2, 3)]


@pytest.mark.parametrize(
    ("spec", "tz", "complaint"),
    [
        ("", "UTC", "empty schedule"),
        ("sometimes", "UTC", "invalid schedule"),
        ("daily@25:00", "UTC", "not a time of day"),
        ("daily@8am", "UTC", "not a time HH:MM"),
        ("weekly@funday 08:00", "UTC", "not a weekday"),
        ("monthly@31 08:00", "UTC", "day 1-28"),
        ("hourly@75", "UTC", "minute 0-59"),
        ("61 * * * *", "UTC", "invalid schedule"),
        ("0 8 * *", "UTC", "invalid schedule"),
        ("0 0 8 * * *", "UTC", "invalid schedule"),  # 6 fields (seconds) are not cron here
        ("daily@08:00", "Mars/Olympus", "unknown time zone"),
        ("daily@08:00", "../etc/passwd", "unknown time zone"),
    ],
)
def test_invalid_specs_raise_config_error(spec: str, tz: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        Schedule.parse(spec, tz)


# -- Scheduler ---------------------------------------------------------------------------------


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, datetime]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, job_id: str, scheduled_for: datetime) -> None:
        with self.lock:
            self.calls.append((job_id, scheduled_for))
        if self.fail:
            raise RuntimeError("SMTP down while rendering")


class Crash(BaseException):
    """Stands for the process dying inside a handler: nothing after it runs."""


def open_scheduler(path: Path, clock: Clock, handler: Recorder) -> Scheduler:
    scheduler = Scheduler(path / "schedule.sqlite3", clock)
    scheduler.register("report", handler)
    return scheduler


def test_hourly_job_runs_once_per_slot(tmp_path: Path) -> None:
    clock, handler = Clock(utc(2026, 3, 2, 9, 10)), Recorder()
    scheduler = open_scheduler(tmp_path, clock, handler)
    job = scheduler.set_job("report:hourly", "report", "hourly")
    assert job.next_run == utc(2026, 3, 2, 10).isoformat()
    assert scheduler.run_pending() == []  # not due yet
    clock.advance(minutes=50)
    [run] = scheduler.run_pending()
    assert (run.job_id, run.scheduled_for, run.status) == (
        "report:hourly",
        utc(2026, 3, 2, 10),
        "ok",
    )
    assert run.next_run == utc(2026, 3, 2, 11)
    assert scheduler.run_pending() == []  # same slot, same instant: no second run
    clock.advance(minutes=30)
    assert scheduler.run_pending() == []
    clock.advance(minutes=30)
    assert len(scheduler.run_pending()) == 1
    assert handler.calls == [
        ("report:hourly", utc(2026, 3, 2, 10)),
        ("report:hourly", utc(2026, 3, 2, 11)),
    ]
    [job] = scheduler.jobs()
    assert (job.last_status, job.last_run, job.running) == (
        "ok",
        utc(2026, 3, 2, 11).isoformat(),
        False,
    )


def test_downtime_of_five_slots_gives_one_catch_up_run(tmp_path: Path) -> None:
    clock, handler = Clock(utc(2026, 3, 2, 9, 30)), Recorder()
    open_scheduler(tmp_path, clock, handler).set_job("report:h", "report", "hourly")
    clock.advance(hours=5, minutes=10)  # 10:00 .. 14:00 missed while nothing ran
    restarted = open_scheduler(tmp_path, clock, handler)
    [run] = restarted.run_pending()
    assert run.scheduled_for == utc(2026, 3, 2, 10)  # the oldest missed slot, run once
    assert run.next_run == utc(2026, 3, 2, 15)
    assert restarted.run_pending() == []
    assert len(handler.calls) == 1


def test_restart_after_claim_before_finish_reruns_after_lease_expiry(tmp_path: Path) -> None:
    clock = Clock(utc(2026, 3, 2, 9, 30))
    crashing = Recorder()
    first = open_scheduler(tmp_path, clock, crashing)
    first.set_job("report:h", "report", "hourly")
    clock.advance(minutes=30)

    def die(job_id: str, scheduled_for: datetime) -> None:
        crashing(job_id, scheduled_for)
        raise Crash

    first.register("report", die)
    with pytest.raises(Crash):
        first.run_pending()
    [job] = first.jobs()
    assert job.running and job.last_run is None  # claimed, never finished

    handler = Recorder()
    restarted = open_scheduler(tmp_path, clock, handler)
    assert restarted.run_pending() == []  # the lease still holds: no concurrent second run
    clock.advance(seconds=LEASE_SECONDS - 1)
    assert restarted.run_pending() == []
    clock.advance(seconds=2)
    [run] = restarted.run_pending()
    assert run.scheduled_for == utc(2026, 3, 2, 10)  # the same slot, run again
    assert handler.calls == [("report:h", utc(2026, 3, 2, 10))]
    assert restarted.run_pending() == []


def test_restart_after_a_normal_finish_does_not_run_again(tmp_path: Path) -> None:
    clock, handler = Clock(utc(2026, 3, 2, 9, 59)), Recorder()
    first = open_scheduler(tmp_path, clock, handler)
    first.set_job("report:h", "report", "hourly")
    clock.advance(minutes=1)
    assert len(first.run_pending()) == 1
    first.close()
    for _ in range(3):
        again = open_scheduler(tmp_path, clock, handler)
        assert again.run_pending() == []
        clock.advance(minutes=10)
    assert len(handler.calls) == 1


def test_two_instances_racing_run_a_slot_once(tmp_path: Path) -> None:
    clock, handler = Clock(utc(2026, 3, 2, 9, 30)), Recorder()
    schedulers = [open_scheduler(tmp_path, clock, handler) for _ in range(4)]
    for i in range(10):
        schedulers[0].set_job(f"report:{i}", "report", "hourly")
    clock.advance(minutes=30)
    start = threading.Barrier(len(schedulers))
    results: list[int] = []

    def race(scheduler: Scheduler) -> None:
        start.wait()
        results.append(len(scheduler.run_pending()))

    threads = [threading.Thread(target=race, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(results) == 10
    assert sorted(job for job, _ in handler.calls) == sorted(f"report:{i}" for i in range(10))


def test_handler_error_is_recorded_and_the_job_moves_on(tmp_path: Path) -> None:
    clock, handler = Clock(utc(2026, 3, 2, 6, 0)), Recorder(fail=True)
    scheduler = open_scheduler(tmp_path, clock, handler)
    scheduler.set_job("report:daily", "report", "daily@08:00", "Europe/Paris")
    clock.advance(hours=1)  # 08:00 Paris
    [run] = scheduler.run_pending()
    assert run.status == "error" and "SMTP down" in (run.error or "")
    [job] = scheduler.jobs()
    assert job.last_status == "error" and "RuntimeError: SMTP down" in (job.last_error or "")
    assert job.next_run == utc(2026, 3, 3, 7).isoformat()
    assert scheduler.run_pending() == []


def test_jobs_without_a_handler_here_are_left_for_another_process(tmp_path: Path) -> None:
    clock, handler = Clock(utc(2026, 3, 2, 9, 30)), Recorder()
    scheduler = open_scheduler(tmp_path, clock, handler)
    scheduler.set_job("alert:volume", "alert", "hourly")
    clock.advance(hours=1)
    assert scheduler.run_pending() == []
    other = Scheduler(tmp_path / "schedule.sqlite3", clock)
    other.register("alert", handler)
    assert [r.job_id for r in other.run_pending()] == ["alert:volume"]


def test_set_job_keeps_next_run_unless_the_schedule_changes(tmp_path: Path) -> None:
    clock, handler = Clock(utc(2026, 3, 2, 9, 30)), Recorder()
    scheduler = open_scheduler(tmp_path, clock, handler)
    scheduler.set_job("report:w", "report", "weekly@mon 08:00")
    clock.advance(days=2)
    assert (
        scheduler.set_job("report:w", "report", "weekly@mon 08:00").next_run
        == utc(2026, 3, 9, 8).isoformat()
    )
    changed = scheduler.set_job("report:w", "report", "daily@08:00", "Europe/Paris")
    assert changed.next_run == utc(2026, 3, 5, 7).isoformat()
    disabled = scheduler.set_job("report:w", "report", "daily@08:00", "Europe/Paris", enabled=False)
    assert disabled.next_run is None and not disabled.enabled
    clock.advance(days=3)
    assert scheduler.run_pending() == []  # disabled jobs never run
    with pytest.raises(ConfigError):
        scheduler.set_job("report:w", "report", "fortnightly")
    assert scheduler.get("report:w") is not None and scheduler.get("report:w").spec == "daily@08:00"  # type: ignore[union-attr]
    assert scheduler.remove_job("report:w") and scheduler.jobs() == []


# -- background loop ---------------------------------------------------------------------------


def test_background_loop_runs_registered_jobs_and_sends_their_deliveries(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import time
    from functools import partial

    from imagedex.config import load_settings
    from imagedex.notify import Message, Outbox
    from imagedex.scheduling.background import start_background
    from imagedex.scheduling.scheduler import JOB_KINDS
    from imagedex.services import Services

    settings = load_settings(environ={}, data_dir=tmp_path / "data")
    services = Services.from_settings(settings)
    drop = settings.data_dir / "deliveries" / "drop"  # folder targets lie below that root
    calls: list[tuple[str, datetime]] = []

    def make_handler(svc: Services) -> Callable[[str, datetime], None]:
        def handle(job_id: str, scheduled_for: datetime) -> None:
            calls.append((job_id, scheduled_for))
            outbox = Outbox.open(svc.settings)
            outbox.enqueue(f"folder:{drop}", Message("tick", "a run"), job_id)
            outbox.close()

        return handle

    def broken_factory(svc: Services) -> Callable[[str, datetime], None]:
        raise RuntimeError("cannot start")

    for kind, factory in (("test-tick", make_handler), ("test-broken", broken_factory)):
        JOB_KINDS.register(kind, factory)
        request.addfinalizer(partial(JOB_KINDS.unregister, kind))
    past = datetime.now(UTC) - timedelta(hours=3)  # the job's slot is already due
    Scheduler(settings.data_dir / "schedule.sqlite3", lambda: past).set_job(
        "test-tick:1", "test-tick", "hourly"
    )
    stop = threading.Event()
    threads = start_background(services, stop)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(drop.glob("*.json")):
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        services.close()
    assert not any(thread.is_alive() for thread in threads)
    assert len(calls) == 1 and calls[0][0] == "test-tick:1"
    assert len(list(drop.glob("*.json"))) == 1
    [job] = Scheduler.open(settings).jobs()
    assert job.last_status == "ok" and job.next_run is not None
    assert job.next_run > datetime.now(UTC).isoformat()
