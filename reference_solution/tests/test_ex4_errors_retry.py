"""Exercise 4: retry of transient failures only, precise error answers, MLflow fallback."""

import json
import logging
import time


def _generate(h, app, model="groq-llama3-8b", prompt=None, headers=None):
    async def go():
        async with h.client(app) as client:
            auth = await h.bearer(client)
            return await client.post("/llm/generate", json=h.body(prompt, model), headers={**auth, **(headers or {})})

    return h.run(go, timeout=15)


def test_transient_failures_are_retried_with_growing_gaps(load_api, upstream, h, caplog, capsys):
    upstream.push({"status": 503}, {"status": 503}, {"status": 503})
    app = load_api(RETRY_BASE_DELAY_SECONDS="0.05")
    with caplog.at_level(logging.INFO):
        response = _generate(h, app)
    assert response.status_code == 200, response.text
    assert upstream.completions() == 4
    times = [entry["t"] for entry in upstream.journal]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] < gaps[1] < gaps[2], gaps
    retry_lines = max(caplog.text.count("Retrying in"), capsys.readouterr().out.count("Retrying in"))
    assert retry_lines == 3


def test_no_retry_on_400(load_api, upstream, h):
    upstream.default = {"status": 400}
    response = _generate(h, load_api())
    assert response.status_code == 400
    assert upstream.completions() == 1


def test_rate_limit_surfaces_as_429(load_api, upstream, h):
    upstream.default = {"status": 429, "headers": {"retry-after": "7"}}
    response = _generate(h, load_api())
    assert response.status_code == 429


def test_unknown_model_is_404_naming_it(load_api, upstream, h):
    upstream.default = {"status": 404, "body": {"error": {"message": "model not found", "code": 404}}}
    response = _generate(h, load_api(), model="groq-does-not-exist")
    assert response.status_code == 404
    assert "groq-does-not-exist" in response.text


def test_error_bodies_are_structured(load_api, upstream, h):
    upstream.default = {"status": 400}
    response = _generate(h, load_api())
    data = response.json()
    data = data.get("detail", data) if isinstance(data.get("detail"), dict) else data
    for field in ("error", "message", "incident_id", "timestamp"):
        assert data.get(field), f"missing {field} in {response.text}"


def test_mlflow_down_generate_succeeds_and_trace_is_kept(load_api, upstream, h, tmp_path):
    # A fallback file of this test's own: the session's shared one holds earlier tests' traces.
    fallback = tmp_path / "fallback.jsonl"
    request_id = f"fallback-probe-{time.time_ns()}"
    response = _generate(h, load_api(TRACE_FALLBACK_PATH=str(fallback)), headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if fallback.exists():
            records = [json.loads(line) for line in fallback.read_text().splitlines() if line.strip()]
            if any(r.get("request_id") == request_id for r in records):
                return
        time.sleep(0.2)
    raise AssertionError(f"no fallback trace of request {request_id} written while MLflow was down")
