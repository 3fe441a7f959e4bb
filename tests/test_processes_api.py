"""Deployed versions, their files, and per-element statistics through the API."""
from datetime import datetime, timezone

import time_machine

from tests.flow import Desk, reviews_at_two_speeds_and_one_overdue

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


def test_versions_and_bpmn_download(app, client, people):
    headers = people["compliance"].headers
    versions = client.get("/api/v1/processes/complaint_handling", headers=headers).json["versions"]
    assert versions[0]["version"] == 1
    assert versions[0]["files"] == ["complaint_handling.bpmn", "management_decision.dmn"]    # the table it calls
    r = client.get("/api/v1/processes/complaint_handling/versions/1/complaint_handling.bpmn", headers=headers)
    assert r.status_code == 200 and r.mimetype == "application/xml" and b'id="initial_review"' in r.data
    assert client.get("/api/v1/processes/nope", headers=headers).status_code == 404
    assert client.get("/api/v1/processes/complaint_handling/versions/9/complaint_handling.bpmn",
                      headers=headers).status_code == 404
    assert client.get("/api/v1/processes/complaint_handling").status_code == 401


def test_stats_count_waiting_overdue_and_median_time_per_element(app, client, people):
    desk = Desk(client, people)
    with time_machine.travel(T0, tick=False) as clock:
        reviews_at_two_speeds_and_one_overdue(desk, clock)
        stats = client.get("/api/v1/processes/complaint_handling/stats",
                           headers=people["management"].headers).json["elements"]
    assert stats["initial_review"] == {"waiting": 1, "overdue": 1, "completed": 2, "median_hours": 4.0,
                                       "median_exact": True}
    assert stats["investigate"]["waiting"] == 2 and stats["investigate"]["overdue"] == 0
    assert "archive" not in stats
    bad = client.get("/api/v1/processes/complaint_handling/stats?since=yesterday",
                     headers=people["management"].headers)
    assert bad.status_code == 400
