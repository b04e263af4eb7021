"""bench.cluster's nginx configuration: docker/nginx.conf with only Docker's parts replaced."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.cluster import nginx_config


@pytest.mark.parametrize("keepalive", [False, True])
def test_the_compose_proxy_config_is_reused_with_local_gateways(tmp_path: Path, keepalive: bool) -> None:
    config = nginx_config([8001, 8002], 8080, tmp_path, keepalive=keepalive)

    assert "resolver " not in config  # Docker's DNS
    assert "gateway:8000" not in config  # and its service name
    assert "server 127.0.0.1:8001;" in config
    assert "server 127.0.0.1:8002;" in config
    assert "proxy_pass http://gateways;" in config
    assert "listen 127.0.0.1:8080" in config
    # What the compose proxy does for the gateways stays: WebSocket upgrades, client address, body limit.
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in config
    assert "proxy_set_header Upgrade $http_upgrade;" in config
    assert "client_max_body_size 1m;" in config
    assert ("keepalive 64;" in config) is keepalive
    assert ("''      close;" in config) is not keepalive  # plain requests close the upstream connection
    if shutil.which("nginx"):  # Debian's nginx, when installed, checks the syntax
        (tmp_path / "nginx.conf").write_text(config)
        checked = subprocess.run(
            ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
