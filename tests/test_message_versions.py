"""A version deployed before message templates were deployed with the process (migration 0012 gave it
none) borrows the templates of the newest version of its process, so its running complaints keep
telling their customers."""
from sqlalchemy import select

from app.extensions import db
from app.models import OutboxMessage, ProcessVersion
from app.outbox.queue import templates_of
from tests.flow import Desk


def test_a_version_without_templates_borrows_the_newest_ones(app, client, people):
    desk = Desk(client, people)
    number = desk.register()                                   # runs on version 1
    old = db.session.execute(select(ProcessVersion).where(ProcessVersion.process_id == "complaint_handling")) \
        .scalar_one()
    templates = dict(old.messages)
    newer = ProcessVersion(process_id=old.process_id, name=old.name, version=old.version + 1,
                           content_hash="newer-" + old.content_hash[:50], bpmn_files=old.bpmn_files,
                           spec_json=old.spec_json, subprocess_specs_json=old.subprocess_specs_json,
                           forms=old.forms, messages=templates, lanes=old.lanes, deployed_by="test")
    db.session.add(newer)
    old.messages = {}                                          # as migration 0012 left it
    db.session.commit()
    assert templates_of(db.session, old) == templates
    assert templates_of(db.session, newer) is newer.messages

    desk.complete(number, "initial_review")
    accepted = db.session.execute(select(OutboxMessage).where(OutboxMessage.business_key == number,
                                                              OutboxMessage.template == "accepted")).scalar_one()
    assert number in accepted.subject and accepted.body
