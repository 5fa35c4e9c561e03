"""The handout's prompt validator: rejects prompts that look like injections."""

from __future__ import annotations

import re

from fastapi import HTTPException

_SUSPICIOUS = [
    r"ignore\s+(all\s+)?(the\s+)?(previous|prior|above)\s+(instructions|prompts?)",
    r"disregard\s+(all\s+)?(previous|prior|above)",
    r"(reveal|print|show)\s+(your\s+)?(system\s+prompt|instructions)",
    r"you\s+are\s+now\s+(in\s+)?(developer|dan|jailbreak)",
    r"```",
    r"<\s*script",
    r"\b(import\s+os|subprocess|eval\s*\(|exec\s*\(|__import__)",
    r"\b(rm\s+-rf|sudo\s|chmod\s|curl\s+http|wget\s|/bin/(ba)?sh|;\s*drop\s+table)",
    r"\b(api[_-]?key|secret|password|token|key)\s*=",
]
_PATTERNS = [re.compile(p, re.IGNORECASE) for p in _SUSPICIOUS]


def validate_prompt(prompt: str) -> None:
    """Raise 400 if the prompt looks like an injection attempt."""
    for pattern in _PATTERNS:
        if pattern.search(prompt):
            raise HTTPException(status_code=400, detail="Prompt rejected by the security policy")
