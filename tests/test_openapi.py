"""The OpenAPI document: generated from the routes' models, it keeps today's contract, covers every route,
follows the settings, renders as a page, and the live API keeps to it (schemathesis, in-process against the WSGI
app, bounded examples)."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import PHONE, REPO, media_library, served
from tests.openapi_contract import contract, lost

# The document of the release before the API was declared by models (default settings): the contract to keep.
FIXTURE = REPO / "tests" / "data" / "openapi_v1.json"
# Fields every response had, that the hand-written document left out; the models declare them now.
NEWLY_DOCUMENTED = {"backend", "precision", "choice", "layout", "building", "started_at", "trigger", "cancelled"}
# Added since (issue 11/14): stable error codes, the scan's coded warnings and the unreadable places.
NEWLY_DOCUMENTED |= {"code", "error_code", "warnings", "unreachable", "raw_url"}

# What later releases added to the contract: new operations, optional parameters (query or form), new fields.
ADDED_OPERATIONS = {("get", "/api/tags"), ("post", "/api/classify")}  # issue 12: tags
ADDED_OPERATIONS |= {("post", f"/api/ocr{action}") for action in ("", "/pause", "/resume", "/cancel")}  # issue 13
ADDED_OPERATIONS |= {  # issue 12: duplicates
    ("get", "/api/duplicates"),
    ("get", "/api/duplicates/export.json"),
    ("get", "/api/duplicates/export.csv"),
    ("get", "/api/hidden"),
    ("post", "/api/hidden"),
    ("post", "/api/hidden/restore"),
}
ADDED_OPERATIONS |= {  # issue 11: timeline, stacks, folders, download, the query picture's preview
    ("get", "/api/items"),
    ("get", "/api/items/{item_id}/stack"),
    ("get", "/api/folders"),
    ("post", "/api/download"),
    ("post", "/api/query-preview"),
}
ADDED_PARAMETERS = {"tag", "text", "include_hidden"}
ADDED_PARAMETERS |= {"name", "sort", "match", "exclude", "stack"}  # issue 11
ADDED_FIELDS = {"tags", "ocr", "snippet", "text"}
ADDED_FIELDS |= {"stack_size", "stack_url", "more", "info"}  # issue 11
ADDED_OPERATIONS |= {("get", "/api/places")}  # issue 12: places
ADDED_PARAMETERS |= {"place"}
ADDED_FIELDS |= {"location"}
ADDED_PARAMETERS |= {"parse"}  # issue 21: the search sentence is read
ADDED_FIELDS |= {"understood"}
ADDED_FIELDS |= {"waiting"}  # issue 20: a scan waiting for an encoder service says why
ADDED_OPERATIONS |= {  # issue 22: people
    ("get", "/api/people"),
    ("get", "/api/people/{person_id}/cover"),
    ("patch", "/api/people/{person_id}"),
    ("post", "/api/people/{person_id}/merge"),
    ("post", "/api/faces/{face_id}/move"),
}
ADDED_PARAMETERS |= {"person"}
ADDED_FIELDS |= {"faces", "people"}
ADDED_OPERATIONS |= {("post", "/api/faces/{face_id}/name")}  # issue 22: "who is this?" in the viewer
ADDED_FIELDS |= {"zoom_url", "scores"}  # issue 23: what the viewer loads on zoom; what a search's scores mean
ADDED_FIELDS |= {"workers"}  # issue 20: the scan workers on several hosts (the roll call)
ADDED_FIELDS |= {"ocr_prelook"}  # issue 24: where the scan's quick look for text runs, and why
ADDED = {"operations": ADDED_OPERATIONS, "parameters": ADDED_PARAMETERS, "fields": ADDED_FIELDS}

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
# Routes outside /api that belong to the REST surface and are documented too.
EXTRA_DOCUMENTED = {"/healthz"}


@pytest.fixture(scope="module")
def app(scanned_app, tmp_path_factory, media_dir):
    """An app over a small scanned library (a few real photos and one broken file)."""
    names = ["jpg_orient1.jpg", "png_rgba_transparent.png", "heic_iphoneXS_2images.heic", "bad_jpg_is_text.jpg"]
    library = media_library(tmp_path_factory.mktemp("openapi") / "library", names)
    return scanned_app(library, decode_threads=1)


def test_document_keeps_the_contract_of_the_hand_written_one(make_app):
    """Same operations, parameters (name, place, required, type, bounds, default), request bodies and statuses;
    every response field it described is still there with the same type; the only new fields are ones the
    responses always had, or ones added since on purpose (``ADDED``), and added parameters are optional."""
    new = contract(make_app().test_client().get("/api/openapi.json").get_json())
    old = contract(json.loads(FIXTURE.read_text(encoding="utf-8")))
    assert set(new) == set(old) | ADDED["operations"]
    for operation, before in old.items():
        after = new[operation]
        assert {k: after["parameters"][k] for k in before["parameters"]} == before["parameters"], operation
        added_parameters = {k: v for k, v in after["parameters"].items() if k not in before["parameters"]}
        assert {name for name, _in in added_parameters} <= ADDED["parameters"], operation
        assert not any(p["required"] for p in added_parameters.values()), operation
        assert lost(before["body"], after["body"]) == [], operation
        body_added = {p.rsplit("/", 1)[1].removesuffix(": missing") for p in lost(after["body"], before["body"])}
        assert body_added <= ADDED["parameters"], operation
        assert set(after["responses"]) == set(before["responses"]), operation
        assert lost(before["responses"], after["responses"]) == [], operation
        added = {p for p in lost(after["responses"], before["responses"]) if p.endswith(": missing")}
        assert {p.rsplit("/", 1)[1].removesuffix(": missing") for p in added} <= NEWLY_DOCUMENTED | ADDED["fields"], (
            operation
        )


def test_contract_comparison_sees_a_lost_field_or_bound():
    """The comparison itself: a field removed or a bound changed is reported."""
    spec = json.loads(FIXTURE.read_text(encoding="utf-8"))
    old = contract(spec)
    spec["components"]["schemas"]["Item"]["properties"].pop("view_url")
    next(p for p in spec["paths"]["/api/search"]["get"]["parameters"] if p["name"] == "offset")["schema"]["minimum"] = 1
    new = contract(spec)
    search = ("get", "/api/search")
    assert new[search]["parameters"] != old[search]["parameters"]
    assert any("view_url: missing" in p for p in lost(old[search]["responses"], new[search]["responses"]))


def _flask_routes(app) -> set[tuple[str, str]]:
    """(OpenAPI-style path, method) of every Flask rule under /api, plus /healthz."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.rule in EXTRA_DOCUMENTED):
            continue
        path = re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule.rule)
        routes |= {(path, m.lower()) for m in rule.methods if m.lower() in HTTP_METHODS}
    return routes


def test_every_api_route_is_documented_and_nothing_else(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops if method in HTTP_METHODS}
    routes = _flask_routes(app)
    assert routes, "no /api routes found"
    assert routes - documented == set(), "routes not declared with api_spec.validate (materialsearch/web/spec.py)"
    assert documented - routes == set(), "documented operations that do not exist"


def test_document_is_well_formed(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    schemas = spec["components"]["schemas"]
    text = repr(spec)
    for target in re.findall(r"'#/components/schemas/([A-Za-z]+)'", text):
        assert target in schemas, f"dangling $ref to {target}"
    operation_ids = []
    for path, ops in spec["paths"].items():
        declared = set(re.findall(r"{([a-z_]+)}", path))
        for method, op in ops.items():
            operation_ids.append(op["operationId"])
            assert op["summary"] and op["responses"], (method, path)
            in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert in_path == declared, (method, path)
            for status, response in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status) and response["description"], (method, path, status)
            if path.startswith("/api/") and path not in {"/api/docs"}:
                assert "401" in op["responses"], f"{method} {path} does not document 401 (login on)"
            errors = [s for s in op["responses"] if s.startswith("4") and s not in {"416"}]
            for status in errors:
                content = op["responses"][status].get("content", {})
                assert content.get("application/json", {}).get("schema") == {"$ref": "#/components/schemas/Error"}
    assert len(operation_ids) == len(set(operation_ids))
    # schemathesis refuses documents it cannot use: loading is a validation too.
    import schemathesis

    schema = schemathesis.openapi.from_dict(spec)
    assert all(result.ok() for result in schema.get_all_operations())


def test_limits_come_from_the_settings(make_app):
    """The document shows the serving app's limits, and requests are checked against them (not a template)."""
    client = make_app(max_page_size=77, page_size=11, max_clip_seconds=5).test_client()
    spec = client.get("/api/openapi.json").get_json()
    search = client.get("/api/search?q=x&limit=78")
    errors = client.get("/api/errors?limit=78")
    default = client.get("/api/search?q=x")
    most = client.get("/api/errors?limit=77")
    limit = next(p for p in spec["paths"]["/api/search"]["get"]["parameters"] if p["name"] == "limit")
    assert {k: limit["schema"][k] for k in ("type", "minimum", "maximum", "default")} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 77,
        "default": 11,
    }
    errors_limit = next(p for p in spec["paths"]["/api/errors"]["get"]["parameters"] if p["name"] == "limit")
    assert errors_limit["schema"]["maximum"] == 77
    body = spec["paths"]["/api/search"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    form = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert form["properties"]["limit"]["maximum"] == 77
    assert "x-from-settings" not in json.dumps(spec)
    for refused in (search, errors):
        assert refused.status_code == 400 and refused.get_json()["error"] == "Bad Request"
        assert "at most 77 (MS_MAX_PAGE_SIZE)" in refused.get_json()["message"]
    assert default.status_code == 200 and most.status_code == 200


def test_validation_errors_are_json_400_naming_the_parameter(app):
    client = app.test_client()
    cases = {
        "/api/search?q=x&limit=ten": "limit",
        "/api/search?q=x&kind=audio": "kind",
        "/api/search?q=x&date_from=yesterday": "date_from",
        "/api/search?like=1&q=x": "either q or like",
        "/api/search": "give a query",
        "/api/errors?offset=-1": "offset",
    }
    for url, named in cases.items():
        response = client.get(url)
        body = response.get_json()
        assert response.status_code == 400 and set(body) == {"error", "code", "message", "status"}, url
        assert body["status"] == 400 and body["error"] == "Bad Request" and named in body["message"], url


def test_docs_page_lists_every_operation_and_loads_nothing_external(app):
    response = app.test_client().get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    spec = app.test_client().get("/api/openapi.json").get_json()
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert f'id="{op["operationId"]}"' in page and path in page
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    # Self-contained: no CDN (offline NAS, and the CSP allows only 'self').
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)
    assert "<script" not in page and "style=" not in page


def test_docs_page_renders_markdown_and_keeps_tables_in_their_box(app):
    page = app.test_client().get("/api/docs").get_data(as_text=True)
    assert "<code>q</code>" in page and "<code>like</code>" in page  # `q` in a description, rendered
    text = re.sub(r"<code>.*?</code>", "", page, flags=re.S)
    assert "`" not in text, "a backtick shown literally"
    assert "&lt;video&gt;" in page and "<video" not in page  # raw HTML in a description is text, not markup
    tables = page.count("<table")
    assert tables > 10 and page.count('<div class="table-scroll">') == tables
    css = (REPO / "static" / "pages.css").read_text(encoding="utf-8")
    assert re.search(r"\.table-scroll\s*{[^}]*overflow-x:\s*auto", css)


def test_readme_links_the_api_docs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "/api/docs" in readme and "/api/openapi.json" in readme


# --- schemathesis: the live app against its own document ------------------------------------------------------
MAX_EXAMPLES = {"positive": 12, "negative": 8}


def _operations(app):
    import schemathesis

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation, mode: str, checks, **fixed) -> None:
    """Run ``operation`` on bounded, reproducible generated cases; raises on the first failing check.

    ``fixed`` pins parts of the request (e.g. ``path_parameters``) while the rest is generated."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    @settings(
        max_examples=MAX_EXAMPLES[mode],
        deadline=None,
        derandomize=True,  # the same examples on every run: CI never flakes on a new random case
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode), **fixed))
    def run(case):
        case.call_and_validate(checks=checks)

    run()


def _form_text_is_text(ctx, response, case):
    """schemathesis' ``negative_data_rejection``, less one false alarm: it counts a number or a structure sent in a
    multipart text field (``path=3565304467954``) as invalid, but every form field is text on the wire, so the
    server rightly takes it as text (schemathesis itself allows this for query and path parameters)."""
    from schemathesis.checks import negative_data_rejection
    from schemathesis.core.mutations import OperatorKind

    phase = getattr(getattr(case.meta, "phase", None), "data", None)
    mutations = getattr(phase, "mutations", None) or []
    if (
        str(case.media_type or "").startswith("multipart/")
        and mutations
        and all(
            m.operator == OperatorKind.CHANGE_TYPE
            and m.original_value == "string"  # whatever replaces it is sent as text (JSON for a structure)
            for m in mutations
        )
    ):
        return None
    return negative_data_rejection(ctx, response, case)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_server_errors_or_schema_violations(app, mode):
    """Every documented operation, with generated valid (positive) or invalid (negative) input: no 5xx, every
    status documented, every body matching its schema, invalid input refused with a 4xx."""
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    if mode == "negative":
        checks.append(_form_text_is_text)
    failures = []
    operations = _operations(app)
    assert len(operations) >= 11
    # Random ids mostly miss; also run the item routes on a real, indexed item.
    item_id = app.test_client().get("/api/search?q=photo&limit=1").get_json()["results"][0]["id"]
    runs = [(operation, {}) for operation in operations]
    runs += [(op, {"path_parameters": {"item_id": item_id}}) for op in operations if "{item_id}" in op.path]
    for operation, fixed in runs:
        if mode == "negative" and not operation.path_parameters and not operation.query and not operation.body:
            continue  # nothing to make invalid
        try:
            _fuzz(operation, mode, checks, **fixed)
        except Unsatisfiable:
            # Negative mode only: every input left free is a free-form string (e.g. `v`), so none is invalid.
            assert mode == "negative", f"{operation.method.upper()} {operation.path}: no valid input generated"
        except AssertionError as exc:  # schemathesis' FailureGroup is one; everything else propagates
            failures.append(f"{operation.method.upper()} {operation.path} {fixed}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_schemathesis_accepts_real_searches_and_files(app, media_dir):
    """Hand-made valid requests that generation rarely hits (a real picture, a real similar-item query)."""
    import schemathesis
    from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    item_id = app.test_client().get("/api/search?q=photo&limit=1").get_json()["results"][0]["id"]
    picture = (media_dir / "jpg_orient1.jpg").read_bytes()
    cases = [
        schema["/api/search"]["POST"].Case(body={"image": picture, "q": "sea", "limit": 2}),
        schema["/api/search"]["GET"].Case(query={"like": item_id, "min_score": -1}),
        schema["/api/search"]["GET"].Case(query={"q": "海边", "date_from": "2000-01-01", "kind": "image"}),
        schema["/api/errors"]["GET"].Case(query={"limit": 1}),
    ]
    for case in cases:
        response = case.call_and_validate(
            checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
        )
        assert response.status_code == 200, response.text


# --- the docs page on a phone -----------------------------------------------------------------------------------
@pytest.mark.browser
def test_docs_page_fits_a_phone_and_obeys_the_csp(app, phone_page):
    """At 390 px the page is no wider than the screen: wide tables scroll inside their own box."""
    with served(app, threads=2) as server:
        page = phone_page
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"http://127.0.0.1:{server.effective_port}/api/docs")
        widths = page.evaluate(
            """() => ({
              page: document.documentElement.scrollWidth,
              boxes: [...document.querySelectorAll('.table-scroll')].map((b) => b.getBoundingClientRect().right),
              wide: [...document.querySelectorAll('.table-scroll')].filter((b) => b.scrollWidth > b.clientWidth)
                .map((b) => getComputedStyle(b).overflowX),
              code: document.querySelectorAll('.api-text code, td code').length,
            })"""
        )
        page.close()
    assert widths["page"] <= PHONE["width"], widths["page"]
    assert widths["boxes"] and max(widths["boxes"]) <= PHONE["width"]
    assert all(overflow == "auto" for overflow in widths["wide"])  # a table wider than its box scrolls in it
    assert widths["code"] > 20 and not errors, errors
