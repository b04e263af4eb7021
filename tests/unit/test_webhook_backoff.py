"""The retry schedule of webhook deliveries: full jitter under a doubling ceiling capped at an hour; which
answers are retried; Retry-After read as seconds or a date, bounded."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from app.notifications.webhooks import backoff, judge, retry_after, signatures

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [(1, 5), (2, 10), (3, 20), (4, 40), (10, 2_560), (11, 3_600), (12, 3_600), (200, 3_600)],
)
def test_the_wait_is_random_below_a_doubling_ceiling_capped_at_an_hour(attempts: int, ceiling: int) -> None:
    assert backoff(attempts, rng=lambda: 0.0) == dt.timedelta(0)
    assert backoff(attempts, rng=lambda: 0.5) == dt.timedelta(seconds=ceiling / 2)
    assert backoff(attempts, rng=lambda: 1.0) == dt.timedelta(seconds=ceiling)


def test_jittered_waits_spread_out() -> None:
    waits = {backoff(6) for _ in range(50)}

    assert len(waits) > 40
    assert all(dt.timedelta(0) <= wait <= dt.timedelta(seconds=160) for wait in waits)


@pytest.mark.parametrize(
    ("status", "delivered", "retried"),
    [
        (200, True, False),
        (204, True, False),
        (299, True, False),
        (301, False, True),
        (400, False, False),
        (401, False, False),
        (404, False, False),
        (410, False, False),
        (429, False, True),
        (500, False, True),
        (503, False, True),
    ],
)
def test_which_answers_are_retried(status: int, delivered: bool, retried: bool) -> None:
    outcome = judge(httpx.Response(status), now=NOW)

    assert (outcome.delivered, outcome.retry, outcome.status_code) == (delivered, retried, status)


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("120", dt.timedelta(seconds=120)),
        (" 7 ", dt.timedelta(seconds=7)),
        ("0", dt.timedelta(0)),
        ("999999999999", dt.timedelta(hours=1)),  # at most an hour
        ("Mon, 23 Nov 2026 12:05:00 GMT", dt.timedelta(minutes=5)),
        ("Mon, 23 Nov 2026 11:00:00 GMT", dt.timedelta(0)),  # a date past: at once
        ("soon", None),
        ("-5", None),
        ("9" * 10_000, None),  # garbage of any length is ignored (the backoff applies)
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date(header: str | None, wait: dt.timedelta | None) -> None:
    assert retry_after(header, now=NOW) == wait


def test_a_429_carries_the_receivers_wait() -> None:
    outcome = judge(httpx.Response(429, headers={"Retry-After": "30"}), now=NOW)

    assert (outcome.retry, outcome.wait) == (True, dt.timedelta(seconds=30))


def test_each_valid_secret_adds_a_signature() -> None:
    one = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    two = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"

    header = signatures([one, two], message_id="msg_1", timestamp=NOW, body="{}")

    assert [part.split(",")[0] for part in header.split(" ")] == ["v1", "v1"]
    assert signatures([one], message_id="msg_1", timestamp=NOW, body="{}") == header.split(" ")[0]
