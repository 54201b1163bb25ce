"""Reverse-proxy mode: nginx terminates TLS and forwards the client certificate in
X-SSL-Client-Cert (`$ssl_client_escaped_cert`); iotpki believes the header only from the
configured trusted proxy address (nginx connects from 127.0.0.2, curl from 127.0.0.1)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from iotpki.app import PKI
from iotpki.settings import Settings
from tests.est.conftest import DOMAIN, EST, start_server, write_trust_files
from tests.servers import free_port

pytestmark = pytest.mark.interop
PROXY_ADDRESS = "127.0.0.2"
SAN = f"URI:urn:iotpki:domain:{DOMAIN}"

NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {tls}/server.pem;
        ssl_certificate_key {tls}/server.key;
        ssl_verify_client optional_no_ca;
        location /.well-known/est/ {{
            proxy_pass https://127.0.0.1:{upstream};
            proxy_bind {proxy};
            proxy_ssl_verify off;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
        }}
    }}
}}
"""


@pytest.fixture
def proxied(demo_pki: PKI, settings: Settings, ports: tuple[int, int],
            tmp_path: Path) -> Iterator[tuple[EST, int]]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/system-packages.sh installs it)")
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    write_trust_files(demo_pki, client_dir)
    server = start_server(demo_pki, settings, ports, client_dir, proxies=[PROXY_ADDRESS])
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    (prefix / "nginx.conf").write_text(NGINX_CONF.format(
        user="user root root;" if os.geteuid() == 0 else "", dir=prefix, port=port,
        tls=settings.data_dir / "tls", upstream=ports[1], proxy=PROXY_ADDRESS))
    process = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port, process, prefix)
        yield server, port
    finally:
        process.terminate()
        process.wait(timeout=15)
        server.stop()


def _wait_for(port: int, process: subprocess.Popen[bytes], prefix: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(prefix / 'error.log').read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("nginx did not listen")


def test_client_certificate_through_nginx(proxied: tuple[EST, int]) -> None:
    est, port = proxied
    registration, secret = est.secret_registration()
    via_proxy = est.url("simpleenroll", port=port)
    first = est.curl("", "-u", f"{registration}:{secret}", url=via_proxy,
                     body=est.new_key_and_csr("first", "/CN=sensor-9"))
    est.certificates_from(first, "first")
    renewal = est.new_key_and_csr("second", "/CN=sensor-9", SAN)
    answer = est.curl("", "--cert", "first.pem", "--key", "first.key", body=renewal,
                      url=est.url("simplereenroll", port=port))
    est.certificates_from(answer, "second")
    est.verify("second")


def test_the_header_is_believed_only_from_the_trusted_proxy(proxied: tuple[EST, int]) -> None:
    est, port = proxied
    registration, secret = est.secret_registration()
    est.certificates_from(est.curl("simpleenroll", "-u", f"{registration}:{secret}",
                                   body=est.new_key_and_csr("first", "/CN=sensor-9")), "first")
    forged = "X-SSL-Client-Cert: " + quote((est.dir / "first.pem").read_text())
    before = len(est.issued())
    renewal = est.new_key_and_csr("renewal", "/CN=sensor-9", SAN)
    direct = est.curl("simplereenroll", "-H", forged, body=renewal)  # from 127.0.0.1
    assert direct.status == 401
    # uvicorn's default would rewrite the client address from 127.0.0.1 to the named proxy
    spoofed = est.curl("simplereenroll", "-H", forged, "-H", f"X-Forwarded-For: {PROXY_ADDRESS}",
                       body=renewal)
    assert spoofed.status == 401
    through = est.curl("", "-H", forged, body=renewal, url=est.url("simplereenroll", port=port))
    assert through.status == 401  # nginx replaces the client's header with its own (empty)
    assert len(est.issued()) == before
