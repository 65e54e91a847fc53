"""The HTTP API through the real application (FastAPI's TestClient) and the real default model."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from disinfo_clf import load_model, match, predict  # noqa: E402
from disinfo_clf.serve.app import create_app  # noqa: E402
from disinfo_clf.serve.schemas import Limits  # noqa: E402

TOKEN = "test-token-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLAIM = "NATO promised Gorbachev it would not expand one inch east. It lied and now encircles Russia."
TEXTS = [CLAIM, "The council approved a budget for public libraries on Tuesday.",
         "Ukraine is ruled by neo-Nazis installed by the West in a coup."]
LIMITS = Limits(max_texts=5, max_text_chars=2000, max_total_chars=3000)


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    """The app serving the default model, with a token and small caps."""
    app = create_app(load_model(), token=TOKEN, max_body_mb=1, limits=LIMITS)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def open_client() -> Iterator[TestClient]:
    """The app without a token."""
    with TestClient(create_app(load_model())) as c:
        yield c


def post(client: TestClient, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={"Content-Type": "application/json", **AUTH, **(headers or {})})


def test_predict_equals_the_library(client: TestClient) -> None:
    r = post(client, "/v1/predict", {"texts": TEXTS, "top_k": 3})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [p.to_dict() for p in predict(TEXTS, top_k=3)]}
    one = post(client, "/v1/predict", {"text": CLAIM})
    assert one.json() == {"predictions": [predict(CLAIM).to_dict()]}
    assert one.json()["predictions"][0]["narrative"] == "nato-aggression"


def test_match_equals_the_library(client: TestClient) -> None:
    r = post(client, "/v1/match", {"texts": TEXTS, "k": 2})
    assert r.status_code == 200, r.text
    assert r.json() == {"matches": [[m.to_dict() for m in found] for found in match(TEXTS, k=2)]}
    one = post(client, "/v1/match", {"text": CLAIM}).json()["matches"]
    assert one == [[m.to_dict() for m in match(CLAIM)]] and len(one[0]) == 5


def test_every_v1_call_needs_the_token(client: TestClient, open_client: TestClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        for path in ("/v1/predict", "/v1/match"):
            r = post(client, path, {"text": CLAIM}, headers)
            assert r.status_code == 401 and "token" in r.json()["error"]
            assert r.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/narratives", headers=headers).status_code == 401
    # the token is checked before the body is looked at
    assert post(client, "/v1/predict", b"{not json", {"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/healthz").status_code == 200
    assert post(open_client, "/v1/predict", {"text": CLAIM}, {"Authorization": ""}).status_code == 200


def test_bodies_over_the_limit_get_413_unread(client: TestClient) -> None:
    big = b'{"text": "' + b"a" * (30 * 1024 * 1024) + b'"}'
    r = post(client, "/v1/predict", big)
    assert r.status_code == 413 and "1 MB" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed bytes are counted
        yield b'{"text": "'
        for _ in range(30):
            yield b"a" * (1024 * 1024)
        yield b'"}'

    r = client.post("/v1/match", content=chunks(), headers={"Content-Type": "application/json", **AUTH})
    assert r.status_code == 413 and "1 MB" in r.json()["error"]


@pytest.mark.parametrize(("body", "status", "words"), [
    (b'{"text": "unfinished', 400, "not valid JSON"),
    (b'["a list"]', 422, "JSON object"),
    ({"texts": ["fine", 3]}, 422, "texts[1]"),
    ({"text": 42}, 422, "text:"),
    ({}, 422, "exactly one of 'text'"),
    ({"text": "a", "texts": ["b"]}, 422, "exactly one of 'text'"),
    ({"text": "   "}, 422, "text: the text is blank"),
    ({"texts": []}, 422, "texts: the list is empty"),
    ({"text": CLAIM, "top_k": 0}, 422, "top_k"),
    ({"text": CLAIM, "top_k": "3"}, 422, "top_k"),
    ({"text": CLAIM, "model": "/etc/passwd"}, 422, "model: unknown field"),
    ({"text": CLAIM, "url": "http://example.org/"}, 422, "url: unknown field"),
    ({"text": CLAIM, "index": "/tmp"}, 422, "index: unknown field"),
])
def test_bad_bodies_name_the_field(client: TestClient, body: Any, status: int, words: str) -> None:
    r = post(client, "/v1/predict", body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_match_k_must_be_a_positive_integer(client: TestClient) -> None:
    r = post(client, "/v1/match", {"text": CLAIM, "k": -1})
    assert r.status_code == 422 and r.json()["error"].startswith("k:")


def test_non_json_content_type_is_refused_with_the_fix(client: TestClient) -> None:
    r = client.post("/v1/predict", content=json.dumps({"text": CLAIM}), headers={**AUTH, "Content-Type": "text/plain"})
    assert r.status_code == 422 and "Content-Type: application/json" in r.json()["error"]


def test_caps_are_stated_in_the_error(client: TestClient) -> None:
    r = post(client, "/v1/predict", {"texts": ["a text"] * 6})
    assert r.status_code == 422 and "6 texts" in r.json()["error"] and "at most 5" in r.json()["error"]
    r = post(client, "/v1/predict", {"texts": ["ok", "b" * 2001]})
    assert r.status_code == 422 and r.json()["error"].startswith("texts[1]: 2001 characters")
    assert "at most 2000" in r.json()["error"]
    r = post(client, "/v1/predict", {"texts": ["c" * 1600, "d" * 1600]})
    assert r.status_code == 422 and "3200 characters in all" in r.json()["error"] and "3000" in r.json()["error"]
    r = post(client, "/v1/predict", {"text": CLAIM, "top_k": 101})
    assert r.status_code == 422 and "top_k: 101" in r.json()["error"] and "100" in r.json()["error"]
    r = post(client, "/v1/match", {"text": CLAIM, "k": 51})
    assert r.status_code == 422 and "k: 51" in r.json()["error"] and "50" in r.json()["error"]


def test_healthz_and_narratives(client: TestClient) -> None:
    model = load_model()
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == model.model_id and health["token_required"] is True
    r = client.get("/v1/narratives", headers=AUTH).json()
    assert r["model"] == model.model_id
    assert [n["id"] for n in r["narratives"]] == model.labels
    nato = next(n for n in r["narratives"] if n["id"] == "nato-aggression")
    assert nato["name"] == predict(CLAIM).name and nato["description"]


def test_page_and_docs_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert "/v1/predict" in html and 'id="token"' in html
    assert "http://" not in html.replace('"http://www.w3.org/2000/svg"', "") and "https://" not in html  # offline
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/match", "/v1/narratives", "/healthz"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


def test_cors_is_off_unless_asked() -> None:
    model = load_model()
    preflight = {"Origin": "https://newsroom.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    with TestClient(create_app(model)) as plain:
        r = plain.post("/v1/predict", json={"text": CLAIM}, headers={"Origin": "https://newsroom.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    with TestClient(create_app(model, token=TOKEN, cors="https://newsroom.example")) as allowed:
        r = allowed.options("/v1/predict", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://newsroom.example"
        r = allowed.options("/v1/predict", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_requests_are_logged_one_line_each(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="disinfo_clf.serve"):
        post(client, "/v1/predict", {"texts": TEXTS[:2]})
        post(client, "/v1/predict", {"text": CLAIM}, {"Authorization": "Bearer wrong"})
    lines = [r.getMessage() for r in caplog.records if r.name == "disinfo_clf.serve"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /v1/predict 200 texts=2 ") and lines[0].endswith(" ms")
    assert lines[1].startswith("POST /v1/predict 401 texts=0 ")
