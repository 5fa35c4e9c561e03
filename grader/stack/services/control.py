"""The grader's control API of the LLM stand-in, and the client that talks to it.

Served on its own loopback port, apart from the port the submission uses, and guarded by a
bearer token given at start so a submission cannot rewrite its own script:
``PUT /script`` ``{"replies": [...], "then": ...}``, ``GET /journal``, ``DELETE /journal``.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, TypeAdapter

from grader.stack.base import JournalEntry, ScriptedReply
from grader.stack.services.llm import Script

_JOURNAL = TypeAdapter(list[JournalEntry])


class _ScriptBody(BaseModel):
    replies: list[ScriptedReply]
    then: ScriptedReply | None = None


def guarded_app(token: str) -> FastAPI:
    """A FastAPI app answering 401 to any request without ``Authorization: Bearer <token>``."""

    def authorised(authorization: str = Header("")) -> None:
        if not secrets.compare_digest(authorization, f"Bearer {token}"):
            raise HTTPException(401, "bad control token")

    return FastAPI(dependencies=[Depends(authorised)], openapi_url=None)


def control_app(script: Script, journal: list[JournalEntry], token: str) -> FastAPI:
    """The control API over the stand-in's ``script`` and ``journal``."""
    app = guarded_app(token)

    @app.put("/script", status_code=204)
    def set_script(body: _ScriptBody) -> None:
        script.set(body.replies, body.then)

    @app.get("/journal")
    def read_journal() -> list[JournalEntry]:
        return journal

    @app.delete("/journal", status_code=204)
    def clear_journal() -> None:
        journal.clear()

    return app


class LLMControl:
    """Implements ``LLMStandIn`` for the grader by calling the control API."""

    def __init__(self, control_url: str, token: str, timeout: float = 5.0) -> None:
        self._http = httpx.Client(
            base_url=control_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def script(self, replies: Sequence[ScriptedReply], then: ScriptedReply | None = None) -> None:
        """Answer the next chat completions with ``replies``, then ``then`` forever."""
        body = {
            "replies": [dataclasses.asdict(r) for r in replies],
            "then": dataclasses.asdict(then) if then else None,
        }
        self._http.put("/script", json=body).raise_for_status()

    def journal(self) -> list[JournalEntry]:
        """Every request received since start (or the last ``clear_journal``), oldest first."""
        response = self._http.get("/journal")
        response.raise_for_status()
        return _JOURNAL.validate_python(response.json())

    def clear_journal(self) -> None:
        """Forget every request received so far."""
        self._http.delete("/journal").raise_for_status()

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.close()
