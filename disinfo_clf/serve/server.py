"""Serve :func:`disinfo_clf.serve.app.create_app` with uvicorn (``disinfo-clf serve``)."""
from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

import uvicorn

from .app import create_app

logger = logging.getLogger("disinfo_clf.serve")

TOKEN_ENV = "DISINFO_CLF_TOKEN"
"""Environment variable read for the token when none is passed (keeps it out of ``ps`` listings)."""
GRACE_SECONDS = 5
"""On SIGTERM/SIGINT, in-flight requests get this long to finish before the server stops anyway."""


def run(host: str = "127.0.0.1", port: int = 8000, model: str | Path | None = None, *,
        narratives: str | Path | None = None, token: str | None = None, max_body_mb: float = 10.0,
        cors: str | None = None, batching: bool = True) -> None:
    """Load ``model`` once and serve the API and the page on ``host:port`` until SIGTERM or SIGINT.

    ``token`` defaults to the ``DISINFO_CLF_TOKEN`` environment variable; with none, the API is open
    to whoever can reach ``host`` (loopback by default). Each request is logged on one line.
    """
    _log_requests()
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    if not _loopback(host) and token is None:
        logger.warning("serving on %s without a token: anyone who can reach it can use the API "
                       "(set --token or %s)", host, TOKEN_ENV)
    app = create_app(model, token=token, max_body_mb=max_body_mb, cors=cors, narratives=narratives,
                     batching=batching)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=GRACE_SECONDS, server_header=False)
    shown = f"[{host}]" if ":" in host else host
    logger.info("model %s; page at http://%s:%d/ , API docs at /docs%s", app.state.model.model_id, shown, port,
                " (token required)" if token else "")
    uvicorn.Server(config).run()
    logger.info("stopped")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _log_requests() -> None:
    """INFO lines of the server (one per request) reach standard error even under the CLI's WARNING level."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    for name in ("disinfo_clf.serve", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.INFO)
