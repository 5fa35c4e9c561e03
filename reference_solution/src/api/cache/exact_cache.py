"""Exact-match response cache in Qdrant (collection `exact_cache`).

Keyed by prompt + model + temperature + max_tokens. The cache is an optimisation: when
Qdrant is unreachable it logs and is skipped (for a few seconds, to keep requests fast),
it never fails a request and never blocks start-up. qdrant-client is synchronous here and
always runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import uuid

from config.logging_config import get_logger
from config.settings import settings

logger = get_logger("api.cache")

COLLECTION = "exact_cache"
QDRANT_TIMEOUT_SECONDS = 2
OUTAGE_BACKOFF_SECONDS = 5.0


def cache_key(prompt: str, model: str, temperature: float, max_tokens: int, system_prompt: str | None = None) -> str:
    raw = json.dumps([prompt, model, round(float(temperature), 4), int(max_tokens), system_prompt or ""])
    return hashlib.sha256(raw.encode()).hexdigest()


class ExactCache:
    def __init__(self, url: str) -> None:
        self.url = url
        self._client = None
        self._ready = False
        self._skip_until = 0.0
        self._lock = threading.Lock()

    def _ensure(self):
        with self._lock:
            if self._client is None:
                from qdrant_client import QdrantClient

                self._client = QdrantClient(url=self.url, timeout=QDRANT_TIMEOUT_SECONDS, check_compatibility=False)
            if not self._ready:
                from qdrant_client.http import models as qm

                if not self._client.collection_exists(COLLECTION):
                    self._client.create_collection(
                        COLLECTION, vectors_config=qm.VectorParams(size=1, distance=qm.Distance.DOT)
                    )
                self._ready = True
            return self._client

    async def _run(self, what: str, fn):
        if time.monotonic() < self._skip_until:
            return None
        try:
            return await asyncio.to_thread(fn)
        except Exception as exc:
            self._skip_until = time.monotonic() + OUTAGE_BACKOFF_SECONDS
            self._ready = False
            logger.warning(f"Qdrant cache unavailable, skipping cache {what}: {exc.__class__.__name__}",
                           extra={"cache_operation": what})
            return None

    def start(self) -> None:
        """Connect and create the collection in the background (start-up never waits)."""
        async def warm() -> None:
            await self._run("warm-up", self._ensure)

        asyncio.get_running_loop().create_task(warm())

    async def get(self, key: str) -> dict | None:
        def lookup():
            client = self._ensure()
            points = client.retrieve(COLLECTION, ids=[str(uuid.uuid5(uuid.NAMESPACE_URL, key))], with_payload=True)
            return dict(points[0].payload or {}) if points else None

        return await self._run("lookup", lookup)

    async def set(self, key: str, value: dict) -> None:
        def store():
            from qdrant_client.http import models as qm

            client = self._ensure()
            point = qm.PointStruct(id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)), vector=[1.0], payload=value)
            client.upsert(COLLECTION, points=[point], wait=False)

        await self._run("store", store)

    async def flush(self) -> None:
        """Writes are issued inline, so nothing is pending once the drain is over."""
        return None

    async def close(self) -> None:
        client, self._client, self._ready = self._client, None, False
        if client is not None:
            await asyncio.to_thread(client.close)



response_cache = ExactCache(settings.QDRANT_URL)
