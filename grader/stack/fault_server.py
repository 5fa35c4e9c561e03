"""The fault proxies of a compose stack, run as one container on the project's network.

``python -m grader.stack.fault_server --route litellm=4000:litellm-upstream:4000 ... --token T``
listens on each route's port and forwards to its target (resolved at every connection, so a
restarted dependency is found again), exactly as the local backend's ``FaultProxy`` does.
The grader switches faults through a control API on its own port, guarded by the token:
``PUT /faults/{route}`` ``{"fault": "hang" | "slow" | "reset" | "down" | null, "delay": s}``.
"""

from __future__ import annotations

import argparse
import re

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from grader.stack.background import BackgroundLoop
from grader.stack.base import Fault
from grader.stack.faults import FaultProxy
from grader.stack.services.control import guarded_app

_ROUTE = re.compile(r"^(?P<name>[\w.-]+)=(?P<port>\d+):(?P<host>[\w.-]+):(?P<target_port>\d+)$")


class _FaultBody(BaseModel):
    fault: Fault | None = None
    delay: float = 0.0


def fault_control_app(proxies: dict[str, FaultProxy], token: str) -> FastAPI:
    """The control API over ``proxies`` (route name -> proxy)."""
    app = guarded_app(token)

    @app.put("/faults/{route}", status_code=204)
    def set_fault(route: str, body: _FaultBody) -> None:
        if route not in proxies:
            raise HTTPException(404, f"no route {route!r}")
        proxies[route].set_fault(body.fault, body.delay)

    @app.get("/health")
    def health() -> dict[str, list[str]]:
        return {"routes": sorted(proxies)}

    return app


class FaultControl:
    """The grader's client of a fault server's control API."""

    def __init__(self, control_url: str, token: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=control_url, headers={"Authorization": f"Bearer {token}"},
                                  timeout=timeout)

    def set_fault(self, route: str, fault: Fault | None, delay: float = 0.0) -> None:
        """Apply ``fault`` (None: none) on ``route``; returns once it is in force."""
        body = {"fault": None if fault is None else fault.value, "delay": delay}
        self._http.put(f"/faults/{route}", json=body).raise_for_status()

    def close(self) -> None:
        self._http.close()


def _parse_route(text: str) -> tuple[str, int, str, int]:
    match = _ROUTE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not NAME=PORT:HOST:PORT: {text!r}")
    return match["name"], int(match["port"]), match["host"], int(match["target_port"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.stack.fault_server", description=__doc__)
    parser.add_argument("--route", type=_parse_route, action="append", required=True,
                        help="NAME=LISTEN_PORT:TARGET_HOST:TARGET_PORT (repeatable)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--token", required=True, help="bearer token of the control API")
    args = parser.parse_args(argv)
    loop = BackgroundLoop()
    proxies = {name: FaultProxy(host, target_port, host=args.host, port=port, loop=loop)
               for name, port, host, target_port in args.route}
    uvicorn.run(fault_control_app(proxies, args.token), host=args.host, port=args.control_port,
                log_config=None, access_log=False)


if __name__ == "__main__":
    main()
