"""Issue 15 item 10: one-time-secret guesses are throttled per client and per registration;
a registration is locked after five wrong secrets (audited), refuses even the right secret
while locked, and an operator unlocks it (REST and CLI). Over EST (RFC 7030 §3.2.3, HTTP
Basic), in process."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

from iotpki.core.integration.principal import Role
from iotpki.core.ra.guessing import GuessLimits
from tests.factories import make_csr
from tests.security.conftest import Listeners


def enroll(listeners: Listeners, user: str, secret: str,
           client: str = "198.51.100.1") -> tuple[int, str, dict[str, str]]:
    listeners.https.set_client(client)
    answer = listeners.https.post(
        "/.well-known/est/simpleenroll", content=base64.b64encode(make_csr("s-42")[0]),
        auth=(user, secret), headers={"Content-Type": "application/pkcs10"})
    return answer.status_code, answer.text, dict(answer.headers)


def test_registration_locks_after_five_wrong_secrets_and_an_operator_unlocks_it(
        listeners: Listeners) -> None:
    limit = GuessLimits().lock_after
    user, secret = listeners.secret_registration("CN=s-42")
    for attempt in range(limit):  # from different addresses: only the registration counts
        status, _, _ = enroll(listeners, user, f"guess-{attempt}", f"198.51.100.{10 + attempt}")
        assert status == 401
    registration = listeners.pki.registrations.get(user)
    assert registration.locked_at is not None and registration.failed_secrets == limit
    assert [d for d in listeners.audit_details() if d["target"] == user
            and d.get("failed_secrets") == limit]
    status, text, _ = enroll(listeners, user, secret, "198.51.100.99")  # the right secret
    assert status == 403 and "registration-locked" in text

    key = listeners.pki.principals.create_api_key("operatorco", Role.REGISTRAR, "r", "t").api_key
    answer = listeners.https.post(f"/api/v1/registrations/{user}/unlock", key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["locked_at"] is None and answer.json()["failed_secrets"] == 0
    assert any(e.record.action == "registration.unlock"
               for e in listeners.pki.audit.entries(limit=None))
    status, _, _ = enroll(listeners, user, secret, "198.51.100.99")
    assert status == 200


def test_one_client_guessing_over_many_registrations_is_throttled(listeners: Listeners) -> None:
    """RFC 6585 §4: 429 with Retry-After once a client sent ten wrong secrets a minute; other
    clients are not affected."""
    per_client = GuessLimits().per_client
    users = [listeners.secret_registration(f"CN=s-{i}") for i in range(3)]
    for attempt in range(per_client):
        status, _, _ = enroll(listeners, users[attempt % 3][0], "wrong", "203.0.113.5")
        assert status == 401
    status, text, headers = enroll(listeners, users[0][0], users[0][1], "203.0.113.5")
    assert status == 429 and "too-many-attempts" in text and "retry-after" in headers
    status, _, _ = enroll(listeners, "no-such-registration", "x", "203.0.113.6")
    assert status == 401  # another client is still heard


def test_cli_unlocks_a_locked_registration(listeners: Listeners) -> None:
    """`iotpki registration unlock`, as a process (it opens and closes its own database)."""
    user, _ = listeners.secret_registration("CN=s-42")
    for attempt in range(GuessLimits().lock_after):
        enroll(listeners, user, "wrong", f"192.0.2.{attempt}")
    assert listeners.pki.registrations.get(user).locked_at is not None
    settings = listeners.pki.settings
    arguments = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        arguments += ["--database-url", settings.database_url]
    result = subprocess.run([sys.executable, "-m", "iotpki.cli.main", *arguments,
                             "registration", "unlock", user, "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["locked_at"] is None
    assert listeners.pki.registrations.get(user).locked_at is None
