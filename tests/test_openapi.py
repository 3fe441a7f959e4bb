"""The OpenAPI 3.1 document describes every /api/v1 route, is valid, and the API keeps to it: schemathesis
sends generated requests (positive mode: within the document; a small negative run: outside it) through
the WSGI app on each database and fails on any 5xx or any response that does not match the document."""
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.api.openapi import NOT_IN_DOCUMENT, OPERATIONS, api_rules, openapi_path
from app.engine.registry import deploy
from app.extensions import db
from tests.conftest import ROLES, _empty_tables, make_user

CHECKS = [not_a_server_error, response_schema_conformance]
EXAMPLES = 25             # per operation and backend: bounded so that CI stays fast
NEGATIVE_EXAMPLES = 10
STATEFUL = settings(max_examples=15, stateful_step_count=8, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _tester():
    """One user holding every role, so that every operation can succeed."""
    return make_user("api_tester", *ROLES)


def _load(app, token, mode, examples):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app,
                                            headers={"Authorization": f"Bearer {token}"})
    schema.config.update(headers={"Authorization": f"Bearer {token}"})
    schema.config.generation.update(modes=[mode], max_examples=examples, deterministic=True, database="none")
    return schema


# ---- the document ------------------------------------------------------------------------------------------
def test_the_document_is_valid_openapi_3_1(client, people):
    r = client.get("/api/v1/openapi.json", headers=people["training"].headers)
    assert r.status_code == 200
    document = r.json
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    ops = [op for item in document["paths"].values() for op in item.values()]
    for op in ops:
        assert {"400", "401", "403", "404", "409", "422"} <= set(op["responses"]), op["operationId"]


def test_every_api_route_is_documented(app):
    """A route added to the API without an entry in app/api/openapi.OPERATIONS fails here."""
    routes = {rule.endpoint for rule in api_rules(app)}
    assert routes - set(OPERATIONS) == set(), "describe these views in app/api/openapi.OPERATIONS"
    assert set(OPERATIONS) - routes == set(), "OPERATIONS names views that no longer exist"
    documented = app.test_client().get("/api/v1/openapi.json", headers={
        "Authorization": f"Bearer {_tester().token}"}).json["paths"]
    for rule in api_rules(app):
        path, _params = openapi_path(rule.rule)
        method = next(m for m in rule.methods if m not in ("HEAD", "OPTIONS")).lower()
        assert method in documented[path], rule.rule


def test_the_document_comes_from_the_marshmallow_schemas(client, people):
    schemas = client.get("/api/v1/openapi.json", headers=people["training"].headers).json["components"]["schemas"]
    assert schemas["ComplaintIn"]["properties"]["customer_name"]["maxLength"] == 100
    assert schemas["ComplaintIn"]["additionalProperties"] is False
    assert schemas["TaskOut"]["properties"]["assignee"]["type"] == ["string", "null"]
    assert schemas["ComplaintViewOut"]["properties"]["satisfied"]["type"] == ["boolean", "null"]
    error = schemas["ErrorBodyOut"]
    assert set(error["required"]) == {"code", "message", "fields"}


def test_a_link_leads_from_registration_to_the_complaint(client, people):
    paths = client.get("/api/v1/openapi.json", headers=people["training"].headers).json["paths"]
    links = paths["/complaints"]["post"]["responses"]["201"]["links"]
    assert links["GetComplaint"] == {"operationId": "getComplaint", "parameters": {"number": "$response.body#/number"}}


def test_the_document_needs_a_login(client, people):
    assert client.get("/api/v1/openapi.json").status_code == 401
    assert client.get("/api/v1/openapi.json", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = client.get("/api/v1/docs")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_the_reference_page_is_served_from_the_app(client, people):
    client.post("/login", data={"username": "compliance", "password": "pw-compliance",
                                "csrf_token": _csrf(client)})
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html and "/static/api-docs.js" in html
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    assert "<script>" not in html and "style=" not in html and "://" not in html     # no inline code, no CDN
    assert client.get("/api/v1/openapi.json").status_code == 200                    # the page's fetch: session
    assert client.get("/static/api-docs.js").status_code == 200
    assert NOT_IN_DOCUMENT == {"api.openapi_document", "api.reference_page"}


def _csrf(client):
    import re
    html = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


# ---- schemathesis ------------------------------------------------------------------------------------------
# schemathesis' own pytest integration (schema.parametrize / from_fixture) fails on pytest 9.2
# ("'Function' object has no attribute '_nodeid'"), so each operation runs as a subtest of one test
# per backend, from hypothesis strategies of the document loaded from that backend's app.
# In positive mode, path parameters are drawn at random or set to things that exist (a registered
# complaint, its open task, the deployed process), so that the 200s get checked too.
def _each_operation(app, subtests, mode, examples, checks):
    tester = _tester()
    schema = _load(app, tester.token, mode, examples)
    known = _existing_things(app, tester)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(OPERATIONS)
    for operation in operations:
        if mode == GenerationMode.NEGATIVE and not (len(operation.body) or len(operation.query)):
            continue         # only path parameters: nothing outside the document can be sent for them
        names = {p.name for p in operation.path_parameters}
        values = known["process" if operation.path.startswith("/processes") else "complaint"]
        strategy = operation.as_strategy(generation_mode=mode)
        if names and mode == GenerationMode.POSITIVE:      # (a negative case needs something to negate)
            strategy = st.one_of(strategy, operation.as_strategy(
                generation_mode=mode, path_parameters={k: v for k, v in values.items() if k in names}))
        with subtests.test(msg=f"{operation.method.upper()} {operation.path}"):
            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case):
                case.call_and_validate(checks=checks)
            run()


def _existing_things(app, tester):
    from app.models import ProcessVersion
    from tests.flow import COMPLAINT
    from app.timeutil import utcnow
    client = app.test_client()
    r = client.post("/api/v1/complaints", json={**COMPLAINT, "received_at": utcnow().isoformat()},
                    headers=tester.headers)
    assert r.status_code == 201, r.json
    version = db.session.execute(db.select(ProcessVersion).order_by(ProcessVersion.id)).scalars().first()
    return {"complaint": {"number": r.json["number"], "task_id": r.json["tasks"][0]["id"], "snapshot_id": 1},
            "process": {"process_id": version.process_id, "number": version.version,
                        "file_name": sorted(version.bpmn_files)[0]}}


def test_api_keeps_to_its_document(app, subtests):
    _each_operation(app, subtests, GenerationMode.POSITIVE, EXAMPLES, CHECKS)


def test_api_never_answers_5xx_to_requests_outside_the_document(app, subtests):
    _each_operation(app, subtests, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, [not_a_server_error])


def test_stateful_scenarios_keep_to_the_document(app, bundles):
    auth = {"Authorization": f"Bearer {_tester().token}"}
    schema = _load(app, auth["Authorization"].split()[1], GenerationMode.POSITIVE, EXAMPLES)

    class Scenario(schema.as_state_machine()):
        def setup(self):
            """Each scenario starts from an empty database with the processes deployed (no flakiness)."""
            db.session.rollback()
            _empty_tables()
            deploy(db.session, bundles, "test")
            auth["Authorization"] = f"Bearer {_tester().token}"

        def get_call_kwargs(self, case):
            return {"headers": dict(auth)}

        def validate_response(self, response, case, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Scenario.run(settings=STATEFUL)
