"""Peers for bench_gateway.py on the same stack (Starlette + uvicorn): a bare WebSocket
echo server and Starlette's StaticFiles. Run: python bench/peer_servers.py echo|static PORT [DIR]

Both run with the daemon's own uvicorn options (``uvicorn_options``: the same WebSocket
implementation, no per-message compression, the same size limit, keepalive and log level),
so a comparison measures the daemon's work and nothing else."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from kaisec.daemon.app import uvicorn_options
from kaisec.daemon.config import DaemonConfig


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            await ws.send_text(await ws.receive_text())
    except WebSocketDisconnect:
        pass


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "echo":
        app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    else:
        app = Starlette(routes=[Mount("/", StaticFiles(directory=sys.argv[3]))])
    uvicorn.run(app, **uvicorn_options(DaemonConfig(port=port)))


if __name__ == "__main__":
    main()
