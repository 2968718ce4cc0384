"""Run Redis for the local cluster only when it is needed (``python -m services.common.localredis``).

supervisord starts this first. When a server already answers at ``REDIS_URL`` (a system service, a
managed instance) it stays out of the way: it waits, watching, and exits 0 on SIGTERM. When the URL
points at this machine and nothing answers, it becomes that server (``exec redis-server``) with no
persistence and a memory cap: everything the cluster keeps in Redis can be fetched again.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import time
from urllib.parse import urlparse

import structlog

from services.common.logs import configure_logging
from services.common.settings import CommonSettings

log = structlog.get_logger(__name__)
LOOPBACK = {"127.0.0.1", "localhost", "::1", ""}


def answers(host: str, port: int) -> bool:
    """True when something at host:port answers a Redis PING."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-ERR"))
    except OSError:
        return False


def main() -> int:
    settings = CommonSettings()
    configure_logging("redis", settings.log_level, settings.log_format)
    url = urlparse(settings.redis_url)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if not answers(host, port):
        if host not in LOOPBACK:
            log.error(
                "redis is not reachable and is not local; services run degraded until it is", host=host, port=port
            )
        else:
            exe = shutil.which("redis-server")
            if exe is None:
                log.error("redis-server is not installed; run `make setup` or point REDIS_URL at a server")
                return 1
            data_dir = settings.run_dir / "redis"
            data_dir.mkdir(parents=True, exist_ok=True)
            log.info("starting redis-server", port=port)
            os.execv(
                exe,
                [
                    exe,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(data_dir),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--maxmemory",
                    "1gb",
                    "--maxmemory-policy",
                    "allkeys-lru",
                ],
            )
    else:
        log.info("using the redis server already running", host=host, port=port)
    while not stopping:
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
