"""Exercise 3: async client with bounded timeouts, a 1 MB body limit, a circuit breaker."""

import asyncio
import sys
import time

import httpx


def test_llm_call_does_not_block_the_event_loop(load_api, upstream, h):
    upstream.default = {"status": 200, "delay": 1.0}
    app = load_api()

    async def go():
        async with h.client(app) as client:
            auth = await h.bearer(client)
            slow = asyncio.create_task(client.post("/llm/generate", json=h.body(), headers=auth))
            while upstream.completions() == 0:
                await asyncio.sleep(0.01)
            health = await client.get("/health")
            return health, time.monotonic(), await slow

    health, health_done, slow = h.run(go, timeout=10)
    assert health.status_code == 200 and slow.status_code == 200
    upstream_answered = upstream.journal[0]["t"] + 1.0
    assert health_done < upstream_answered - 0.3, "/health waited behind the LLM call: the event loop was blocked"


def test_hanging_upstream_answers_504_within_budget(load_api, upstream, h):
    upstream.default = {"hang": True}
    app = load_api(LLM_TIMEOUT_SECONDS="0.5", LLM_TOTAL_BUDGET_SECONDS="1.5")

    async def go():
        async with h.client(app) as client:
            auth = await h.bearer(client)
            started = time.monotonic()
            response = await client.post("/llm/generate", json=h.body(), headers=auth)
            return response, time.monotonic() - started

    response, elapsed = h.run(go, timeout=8)
    assert response.status_code in (503, 504) and elapsed < 4


def test_client_timeouts_configured(load_api):
    load_api()
    import sys

    client = sys.modules["services.llm_client"].get_client()
    assert client.max_retries == 0
    assert client.timeout.read == 30 and client.timeout.connect == 5
    assert str(client.base_url).rstrip("/").endswith("/v1")


def test_chat_completions_path(load_api, upstream, h):
    app = load_api()

    async def go():
        async with h.client(app) as client:
            return await client.post("/llm/generate", json=h.body(), headers=await h.bearer(client))

    assert h.run(go).status_code == 200
    assert upstream.journal[-1]["path"] == "/v1/chat/completions"


def test_body_over_1mb_with_content_length_gets_413(load_api, h):
    app = load_api()
    payload = b'{"prompt": "' + b"a" * (2 * 1024 * 1024) + b'"}'

    async def go():
        async with h.client(app) as client:
            return await client.post("/llm/generate", content=payload, headers={
                **(await h.bearer(client)), "content-type": "application/json"})

    assert h.run(go).status_code == 413


def test_chunked_body_over_1mb_gets_413_without_reading_it_all(load_api, h):
    app = load_api()
    sent = {"chunks": 0}

    async def chunks():
        yield b'{"prompt": "'
        for _ in range(32):  # 32 x 64 KB = 2 MB
            sent["chunks"] += 1
            yield b"a" * 65536
        yield b'"}'

    async def go():
        async with h.client(app) as client:
            auth = await h.bearer(client)
            return await client.post("/llm/generate", content=chunks(), headers={**auth, "content-type": "application/json"})

    response = h.run(go)
    assert response.status_code == 413
    assert sent["chunks"] < 32, "the whole body was read before answering"


def test_circuit_breaker_opens_fails_fast_and_recovers(load_api, upstream, h):
    upstream.default = {"status": 500}
    app = load_api(CIRCUIT_RECOVERY_SECONDS="0.5")

    async def go():
        async with h.client(app) as client:
            auth = await h.bearer(client)
            statuses = []
            for _ in range(8):
                response = await client.post("/llm/generate", json=h.body(), headers=auth)
                statuses.append(response.status_code)
                if response.status_code == 503:
                    break
            calls_when_open = upstream.completions()
            started = time.monotonic()
            fast = await client.post("/llm/generate", json=h.body(), headers=auth)
            fast_elapsed = time.monotonic() - started
            calls_after = upstream.completions()
            state = sys.modules["services.circuit_breaker"].snapshot()
            upstream.default = {"status": 200}
            await asyncio.sleep(0.6)
            recovered = await client.post("/llm/generate", json=h.body(), headers=auth)
            return statuses, calls_when_open, fast, fast_elapsed, calls_after, state, recovered

    statuses, calls_when_open, fast, fast_elapsed, calls_after, state, recovered = h.run(go, timeout=15)
    assert statuses[-1] == 503, statuses
    assert calls_when_open >= 5
    assert fast.status_code == 503 and fast_elapsed < 0.5 and calls_after == calls_when_open
    assert state.get("state") == "open"
    assert recovered.status_code == 200
