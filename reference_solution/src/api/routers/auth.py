"""Login and identity."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from config.logging_config import get_logger
from models.schemas import LoginRequest
from services.auth import authenticate, create_token, get_current_user

router = APIRouter(prefix="/auth", tags=["auth"])
logger = get_logger("api.auth")


@router.post("/login")
async def login(body: LoginRequest) -> dict:
    user = authenticate(body.username, body.password)
    if user is None:
        logger.warning("Failed login", extra={"username": body.username})
        raise HTTPException(401, "Invalid username or password")
    token, expires_in = create_token(user)
    logger.info("Login", extra={"username": user["username"]})
    return {"access_token": token, "token_type": "bearer", "expires_in": expires_in, "user": user}


@router.get("/me")
async def me(user: dict = Depends(get_current_user)) -> dict:
    return user
