"""Built-in users and JWT tokens (PyJWT)."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta, timezone

import jwt
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config.settings import settings

_bearer = HTTPBearer(auto_error=False)


def _users() -> dict[str, dict]:
    return {
        "admin": {"password": settings.AUTH_ADMIN_PASSWORD, "role": "admin"},
        "user": {"password": settings.AUTH_USER_PASSWORD, "role": "user"},
    }


def authenticate(username: str, password: str) -> dict | None:
    user = _users().get(username)
    if user and hmac.compare_digest(user["password"].encode(), password.encode()):
        return {"username": username, "role": user["role"]}
    return None


def create_token(user: dict) -> tuple[str, int]:
    expires_in = settings.JWT_EXPIRE_MINUTES * 60
    now = datetime.now(timezone.utc)
    claims = {"sub": user["username"], "role": user["role"], "iat": now, "exp": now + timedelta(seconds=expires_in)}
    return jwt.encode(claims, settings.JWT_SECRET_KEY, algorithm=settings.JWT_ALGORITHM), expires_in


def get_current_user(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> dict:
    if credentials is None:
        raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = jwt.decode(credentials.credentials, settings.JWT_SECRET_KEY, algorithms=[settings.JWT_ALGORITHM])
    except jwt.PyJWTError:
        raise HTTPException(401, "Invalid or expired token", headers={"WWW-Authenticate": "Bearer"})
    return {"username": claims["sub"], "role": claims.get("role", "user")}
