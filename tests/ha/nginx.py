"""deploy/nginx's template made into a whole nginx.conf that runs as an ordinary process."""

from __future__ import annotations

from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "dataintel.conf.template"
FAIL_TIMEOUT_SECONDS = 2


def render_nginx_config(
    directory: Path, listen_port: int, upstreams: list[str], *, expose_upstream: bool = False
) -> Path:
    """Writes nginx.conf (and dataintel.conf) under ``directory``; returns nginx.conf's path.

    Everything nginx writes (pid, logs, temporary bodies) stays under ``directory``.
    ``expose_upstream`` adds the replica that answered as a response header, for the
    failover test to see when a restarted replica is back in rotation.
    """
    directory.mkdir(parents=True, exist_ok=True)
    servers = "\n    ".join(
        f"server {upstream} max_fails=1 fail_timeout={FAIL_TIMEOUT_SECONDS}s;"
        for upstream in upstreams
    )
    site = (
        TEMPLATE.read_text()
        .replace("${DATAINTEL_NGINX_LISTEN}", f"127.0.0.1:{listen_port}")
        .replace("${DATAINTEL_NGINX_UPSTREAMS}", servers)
    )
    if expose_upstream:
        site = site.replace(
            "    add_header X-Request-ID",
            "    add_header X-Upstream-Addr $upstream_addr always;\n    add_header X-Request-ID",
            1,
        )
    (directory / "dataintel.conf").write_text(site)
    config = directory / "nginx.conf"
    config.write_text(
        f"""# Written by tests/ha/nginx.py; runs in the foreground as the current user.
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/dataintel.conf;
}}
"""
    )
    return config
