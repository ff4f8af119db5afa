"""The embedded default: sources served by the simulator in this process, Airflow on SQLite.

Only the command line and the tests use this module (the pipeline never imports the simulator: see
``.importlinter``). Anything already set in the environment wins, so the same commands run against real
departments and a real Airflow.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .config import settings
from .connectors.settings import API_TOKEN, API_URL, DB_URL, DROP_ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_apis_apart():
    """``edw simulate serve`` on a free port: (process, base URL, token), once it answers."""
    import subprocess
    import sys

    import httpx

    from .simulator.server import TOKEN_ENV

    token = secrets.token_urlsafe(18)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emergency_dw.cli",
            "simulate",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, TOKEN_ENV: token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=1)
            return process, url, token
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"the simulated APIs (edw simulate serve --port {port}) did not start; run it by hand to see why"
                ) from None
            time.sleep(0.2)


@contextmanager
def embedded_sources(apis_apart: bool = False) -> Iterator[dict[str, str]]:
    """Serve the simulated departments (HTTP APIs in a thread; SQLite; drop folders) unless the
    environment already names real sources. Yields the settings it put in the environment.

    ``apis_apart``: the APIs run as a process of their own (``edw simulate serve``), as a department's
    server would, so their memory (every day's records they hold) is not counted as the pipeline's."""
    from .simulator.run import source_db_url

    sources = settings().sources_dir
    added: dict[str, str] = {}
    server = thread = process = None
    if not os.environ.get(API_URL) and apis_apart:
        process, added[API_URL], added[API_TOKEN] = _serve_apis_apart()
    elif not os.environ.get(API_URL):
        import uvicorn

        from .simulator.server import create_app

        token = secrets.token_urlsafe(18)
        port = _free_port()
        config = uvicorn.Config(
            create_app(sources, token), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="simulated-apis", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the simulated APIs did not start; is the port taken?")
            time.sleep(0.05)
        added[API_URL] = f"http://127.0.0.1:{port}"
        added[API_TOKEN] = token
    if not os.environ.get(DB_URL):
        added[DB_URL] = source_db_url(sources)
    if not os.environ.get(DROP_ROOT):
        added[DROP_ROOT] = str(sources / "drop")
    os.environ.update(added)
    try:
        yield added
    finally:
        for key in added:
            os.environ.pop(key, None)
        if server is not None:
            server.should_exit = True
            thread.join(timeout=10)
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
