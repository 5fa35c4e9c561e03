"""The services process, observed only through real clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.client
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import openai
import psutil
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.common.version_check import get_server_version, is_compatible
from qdrant_client.http.exceptions import UnexpectedResponse

from grader.errors import StackError
from grader.stack.base import ScriptedReply, Service
from grader.stack.services.bounds import MAX_BODY_BYTES
from grader.stack.services.llm import MAX_JOURNALED_BODY_BYTES
from grader.stack.services.process import ServicesProcess

MESSAGES = [{"role": "user", "content": "Name three rivers of Europe"}]


@pytest.fixture(scope="module")
def services() -> Iterator[ServicesProcess]:
    with ServicesProcess.start() as process:
        yield process


@pytest.fixture()
def llm(services: ServicesProcess) -> ServicesProcess:
    """The shared process with an empty script and journal."""
    services.llm.script([])
    services.llm.clear_journal()
    return services


def _client(services: ServicesProcess, **options: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{services.llm_url}/v1", api_key="test", **options)  # type: ignore[arg-type]


def _chat_replies(services: ServicesProcess) -> list[str]:
    return [e.reply for e in services.llm.journal() if e.path.endswith("/chat/completions")]


def test_completion_is_deterministic_and_counts_tokens(llm: ServicesProcess) -> None:
    client = _client(llm)
    first = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    again = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.model == "gpt-4o-mini"
    assert first.usage is not None and first.usage.prompt_tokens == 5
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens


def test_async_client_and_models(llm: ServicesProcess) -> None:
    async def run() -> tuple[str | None, list[str]]:
        async with openai.AsyncOpenAI(base_url=f"{llm.llm_url}/v1", api_key="test") as client:
            answer = await client.chat.completions.create(model="groq-llama-3-8b", messages=MESSAGES)  # type: ignore[arg-type]
            listed = [m.id async for m in client.models.list()]
            return answer.choices[0].message.content, listed

    content, listed = asyncio.run(run())
    assert content and "rivers" in content
    assert "gpt-4o-mini" in listed
    assert httpx.get(f"{llm.llm_url}/models").status_code == 200
    assert httpx.get(f"{llm.llm_url}/health").status_code == 200


def test_streamed_completion(llm: ServicesProcess) -> None:
    stream = _client(llm).chat.completions.create(model="gemini-1-5-flash", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    plain = _client(llm).chat.completions.create(model="gemini-1-5-flash", messages=MESSAGES)  # type: ignore[arg-type]
    assert text == plain.choices[0].message.content


def test_scripted_failures_then_success_are_journaled(llm: ServicesProcess) -> None:
    llm.llm.script([ScriptedReply(status=503), ScriptedReply(status=503)])
    client = _client(llm, max_retries=2)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    journal = llm.llm.journal()
    assert [e.reply for e in journal] == ["503", "503", "200"]
    assert all(e.method == "POST" and "rivers" in e.body for e in journal)
    assert journal[0].at <= journal[1].at <= journal[2].at


def test_then_reply_repeats_forever(llm: ServicesProcess) -> None:
    llm.llm.script([], then=ScriptedReply(status=500))
    client = _client(llm, max_retries=0)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert _chat_replies(llm) == ["500"] * 3


def test_unknown_model_is_404_naming_it(llm: ServicesProcess) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _client(llm, max_retries=0).chat.completions.create(model="gpt-unknown-model", messages=MESSAGES)  # type: ignore[arg-type]
    assert "gpt-unknown-model" in str(caught.value)
    assert caught.value.code == "model_not_found"


def test_hang_runs_into_the_client_timeout(llm: ServicesProcess) -> None:
    llm.llm.script([ScriptedReply(hang=True)])
    with pytest.raises(openai.APITimeoutError):
        _client(llm, max_retries=0, timeout=0.5).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert _chat_replies(llm) == ["hang"]


def test_reset_is_a_connection_error(llm: ServicesProcess) -> None:
    llm.llm.script([ScriptedReply(reset=True)])
    with pytest.raises(openai.APIConnectionError):
        _client(llm, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert _chat_replies(llm) == ["reset"]


def test_rate_limit_carries_retry_after_and_body(llm: ServicesProcess) -> None:
    body = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limited"}}
    llm.llm.script([ScriptedReply(status=429, body=body, headers={"Retry-After": "7"})])
    with pytest.raises(openai.RateLimitError) as caught:
        _client(llm, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limited"


def test_delay_and_keep_alive(llm: ServicesProcess) -> None:
    llm.llm.script([ScriptedReply(delay=0.3)])
    url = urlsplit(llm.llm_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
    body = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
    sockets = []
    for _ in range(3):
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        assert connection.getresponse().read()
        sockets.append(connection.sock)
    connection.close()
    assert sockets[0] is not None and sockets == [sockets[0]] * 3  # one connection, three requests
    journal = llm.llm.journal()
    assert [e.reply for e in journal] == ["200"] * 3


def test_control_api_wants_the_token(services: ServicesProcess) -> None:
    assert httpx.get(f"{services.control_url}/journal").status_code == 401
    assert httpx.put(f"{services.control_url}/script", json={"replies": []}).status_code == 401


def test_tei_embeds_deterministic_unit_vectors(services: ServicesProcess) -> None:
    assert httpx.get(f"{services.tei_url}/health").status_code == 200
    assert httpx.get(f"{services.tei_url}/info").json()["model_id"]
    [single] = httpx.post(f"{services.tei_url}/embed", json={"inputs": "a cat"}).json()
    batch = httpx.post(f"{services.tei_url}/embed", json={"inputs": ["a cat", "a dog"]}).json()
    assert len(single) == 384 and math.isclose(math.fsum(x * x for x in single), 1.0)
    assert batch[0] == single and batch[1] != single
    openai_style = httpx.post(f"{services.tei_url}/v1/embeddings", json={"input": ["a cat"]}).json()
    assert openai_style["data"][0]["embedding"] == single


@pytest.mark.parametrize("client_version", ["1.7.3", "1.12.1", "1.20.0"])
def test_qdrant_version_suits_any_pinned_client(services: ServicesProcess, client_version: str) -> None:
    agent = {"User-Agent": f"python-client/{client_version} python/3.11"}
    assert is_compatible(client_version, get_server_version(services.qdrant_url, agent, None, 5))


def test_qdrant_serves_a_cache_flow_to_the_real_client(services: ServicesProcess) -> None:
    client = QdrantClient(url=services.qdrant_url)
    with pytest.raises(UnexpectedResponse) as missing:
        client.get_collection("exact_cache")
    assert missing.value.status_code == 404
    assert not client.collection_exists("exact_cache")
    client.create_collection("exact_cache", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    assert client.collection_exists("exact_cache")
    assert client.get_collection("exact_cache").config.params.vectors.size == 4  # type: ignore[union-attr]
    client.upsert(
        "exact_cache",
        points=[
            models.PointStruct(id=1, vector=[1, 0, 0, 0], payload={"key": "a", "response": "A"}),
            models.PointStruct(id="5c56c793-69f3-4fbf-87e6-c4bf54c28c26", vector=[0, 1, 0, 0], payload={"key": "b"}),
        ],
    )
    assert client.retrieve("exact_cache", [1])[0].payload == {"key": "a", "response": "A"}
    hits = client.query_points("exact_cache", query=[1, 0, 0, 0], limit=1, with_payload=True).points
    assert hits[0].id == 1 and hits[0].score == pytest.approx(1.0)
    match = models.Filter(must=[models.FieldCondition(key="key", match=models.MatchValue(value="b"))])
    records, _ = client.scroll("exact_cache", scroll_filter=match, limit=10)
    assert [r.payload for r in records] == [{"key": "b"}]
    assert client.count("exact_cache").count == 2
    client.upsert("exact_cache", points=models.Batch(ids=[7], vectors=[[0, 0, 1, 0]], payloads=[{"key": "c"}]))
    assert client.count("exact_cache", count_filter=match).count == 1
    assert client.count("exact_cache").count == 3
    client.delete("exact_cache", points_selector=models.PointIdsList(points=[1]))
    client.delete("exact_cache", points_selector=models.FilterSelector(filter=match))
    assert [r.id for r in client.scroll("exact_cache")[0]] == [7]
    assert [c.name for c in client.get_collections().collections] == ["exact_cache"]
    client.delete_collection("exact_cache")
    assert not client.collection_exists("exact_cache")
    client.close()


def test_qdrant_missing_collection_is_404_and_old_search_works(services: ServicesProcess) -> None:
    missing = httpx.get(f"{services.qdrant_url}/collections/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["status"]["error"]
    base = f"{services.qdrant_url}/collections/old_client"
    httpx.put(base, json={"vectors": {"size": 2, "distance": "Dot"}}).raise_for_status()
    httpx.put(f"{base}/points", json={"points": [{"id": 3, "vector": [1, 0], "payload": {"k": 1}}]}).raise_for_status()
    found = httpx.post(f"{base}/points/search", json={"vector": [1, 0], "limit": 1, "with_payload": True}).json()
    assert found["status"] == "ok" and found["result"][0]["payload"] == {"k": 1}
    assert httpx.get(f"{services.qdrant_url}/healthz").status_code == 200
    httpx.delete(base).raise_for_status()


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_two_processes_at_once_leave_nothing_behind() -> None:
    before = _children()  # the module's shared process may be running
    with ServicesProcess.start() as one, ServicesProcess.start() as two:
        assert one.url(Service.LLM) != two.url(Service.LLM) and one.url(Service.QDRANT) != two.url(Service.QDRANT)
        one.llm.script([ScriptedReply(status=503)])
        assert httpx.post(f"{one.llm_url}/v1/chat/completions", json={"model": "gpt-x"}).status_code == 503
        assert httpx.post(f"{two.llm_url}/v1/chat/completions", json={"model": "gpt-x"}).status_code == 200
        pids = [one.pid, two.pid]
    assert not [p for p in pids if psutil.pid_exists(p)]
    assert _children() <= before


def test_an_orphaned_process_stops_by_itself() -> None:
    parent = subprocess.run(
        [sys.executable, "-c", "from grader.stack.services.process import ServicesProcess as S; print(S.start().pid)"],
        capture_output=True, text=True, timeout=20, check=True,
    )
    orphan = int(parent.stdout)
    try:
        psutil.Process(orphan).wait(timeout=5)
    except psutil.NoSuchProcess:
        pass  # already gone
    except psutil.TimeoutExpired:
        os.kill(orphan, signal.SIGKILL)
        pytest.fail("the services process outlived its parent")


def test_start_failure_is_a_stack_error_and_leaves_nothing() -> None:
    before = _children()
    with pytest.raises(StackError, match="not ready within 0.01 s"):
        ServicesProcess.start(timeout=0.01)
    assert _children() <= before


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"[" * min(size, total - start)


@pytest.mark.parametrize("chunked", [False, True])
def test_the_stand_ins_answer_413_to_a_body_past_their_cap(services: ServicesProcess, chunked: bool) -> None:
    """What the grader's side keeps of a submission's request is bounded, sized or streamed."""
    size = 3 * MAX_BODY_BYTES
    with httpx.Client(timeout=30) as client:
        for url in (f"{services.llm_url}/v1/chat/completions", f"{services.url(Service.QDRANT)}/collections/c/points",
                    f"{services.url(Service.TEI)}/embed"):
            body = _chunks(size) if chunked else b"[" * size
            assert client.post(url, content=body).status_code == 413, url


def test_the_llm_journal_keeps_a_bounded_excerpt_of_each_body(llm: ServicesProcess) -> None:
    nested = "[" * (MAX_JOURNALED_BODY_BYTES * 4)  # and deeper than json.loads recurses
    with httpx.Client(timeout=30) as client:
        answer = client.post(f"{llm.llm_url}/v1/chat/completions", content=nested)
    assert answer.status_code == 400  # not JSON it can read: the stand-in answers, it does not crash
    (entry,) = llm.llm.journal()
    assert entry.body == nested[:MAX_JOURNALED_BODY_BYTES]
