"""Registration refuses times outside a sane window with a clear message (never a 500), and says so
when the time received is already past a deadline."""
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from tests.flow import COMPLAINT, Desk
from tests.test_api_errors import assert_error, snapshot
from tests.test_web import Browser, as_, flashes, text


@pytest.fixture
def desk(client, people):
    return Desk(client, people)


@pytest.mark.parametrize("received_at, message", [
    ("0001-01-01T00:00:00+14:00", "before 2000"),
    ("1999-12-31T23:59:59+08:00", "before 2000"),
    ("9999-12-31T23:59:59-14:00", "in the future"),
    pytest.param((datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(), "in the future", id="in-an-hour"),
])
def test_received_at_outside_the_window_is_a_422(client, people, received_at, message):
    before = snapshot()
    r = client.post("/api/v1/complaints", json={**COMPLAINT, "received_at": received_at},
                    headers=people["customer_service"].headers)
    assert_error(r, 422, "invalid_data", fields=["received_at"])
    assert message in r.json["error"]["fields"]["received_at"]
    assert snapshot() == before


def test_a_complaint_received_past_a_deadline_says_so(client, people):
    # Wed 2026-11-25 18:00 in Shanghai; received 30 hours before: the 24 hours of the initial review are
    # over, its follow-up's working day (Thursday) is not.
    with time_machine.travel(datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc), tick=False):
        received = (datetime.now(timezone.utc) - timedelta(hours=30)).isoformat()
        r = client.post("/api/v1/complaints", json={**COMPLAINT, "received_at": received},
                        headers=people["customer_service"].headers)
        assert r.status_code == 201
        assert [d["element_id"] for d in r.json["missed_deadlines"]] == ["initial_review_deadline"]
        assert r.json["warnings"] and "past the deadline" in r.json["warnings"][0]
        fresh = client.post("/api/v1/complaints", json={**COMPLAINT, "received_at": datetime.now(timezone.utc).isoformat()},
                            headers=people["customer_service"].headers)
        assert fresh.json["missed_deadlines"] == [] and fresh.json["warnings"] == []


def test_the_register_page_says_a_deadline_is_already_missed(app, people):
    b = as_(lambda: Browser(app), "customer_service")
    received = (datetime.now(timezone.utc) - timedelta(days=3)).astimezone(timezone(timedelta(hours=8)))
    form = {"channel": "hotline", "customer_name": "张三", "phone": "13812345678", "policy_number": "PA-1",
            "category": "claim_delay", "product_line": "health", "description": "未赔付",
            "received_at": received.strftime("%Y-%m-%dT%H:%M")}
    r = b.post("/complaints/new", form, follow_redirects=True)
    assert r.status_code == 200
    assert any("已超过时限" in f for f in flashes(r)), flashes(r)


def test_the_register_page_explains_a_time_before_2000(app, people):
    b = as_(lambda: Browser(app), "customer_service")
    form = {"channel": "hotline", "customer_name": "张三", "phone": "13812345678", "policy_number": "PA-1",
            "category": "claim_delay", "product_line": "health", "description": "未赔付",
            "received_at": "1999-01-01T10:00"}
    r = b.post("/complaints/new", form)
    assert r.status_code == 422 and "2000" in text(r)
