"""The built-in secret checks on pull requests: the common forms are found (critical, blocking),
placeholders are not, and secrets in test data are one low finding that never blocks a merge."""

from __future__ import annotations

import random
import string

from agents.common.redact import redact
from agents.github.files import ChangedFile
from agents.github.findings import BLOCKING, rule_score
from agents.github.rules import is_test_data, review_rules

_rng = random.Random(7)


def rand(n: int) -> str:
    return "".join(_rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def _file(path: str, lines: list[str]) -> ChangedFile:
    patch = f"@@ -0,0 +1,{len(lines)} @@\n" + "\n".join(f"+{ln}" for ln in lines)
    return ChangedFile(path=path, status="added", patch=patch, additions=len(lines))


def _secret_findings(files: list[ChangedFile]) -> list[tuple[str, int, str]]:
    return [
        (c.path, c.line, c.severity)
        for c in review_rules(files)
        if "secret" in c.body.lower() or "plain text" in c.body
    ]


def test_the_common_forms_are_found_on_their_line_as_blocking() -> None:
    aws_id, aws_secret = "AKIA" + rand(16).upper(), rand(40)
    env = _file(
        "deploy/.env.production",
        [f"DB_PASSWORD={rand(12)}", "DEBUG=false", f"STRIPE_KEY=sk_test_{rand(24)}"],
    )
    config = _file(
        "config/settings.yaml",
        ["database:", f"  password: {rand(10)}", "  host: db", f"  api_key: {rand(12)}"],
    )
    code = _file(
        "src/client.py",
        [
            f'SLACK_APP = "xapp-1-A{rand(10).upper()}-{rand(13)}-{rand(40)}"',
            f'HOOK = "https://hooks.slack.com/services/T{rand(9)}/B{rand(9)}/{rand(24)}"',
            f'payload = {{"password": "{rand(14)}"}}',
            f"aws = ('{aws_id}', '{aws_secret}')",
            "token = request.headers['Authorization']",
            f'session = "eyJhbGciOiJub25lIn0.eyJ1c2VyIjoiYW5uIiwiYWRtaW4iOnRydWV9."  # {rand(3)}',
        ],
    )
    props = _file("src/app.ini", ["[db]", f"secret = {rand(16)}"])
    found = _secret_findings([env, config, code, props])
    assert found == [
        ("deploy/.env.production", 1, "critical"),
        ("deploy/.env.production", 3, "critical"),
        ("config/settings.yaml", 2, "critical"),
        ("config/settings.yaml", 4, "critical"),
        ("src/client.py", 1, "critical"),
        ("src/client.py", 2, "critical"),
        ("src/client.py", 3, "critical"),
        ("src/client.py", 4, "critical"),
        ("src/client.py", 6, "critical"),
        ("src/app.ini", 2, "critical"),
    ]
    assert all(sev in BLOCKING for _, _, sev in found)
    bodies = " ".join(c.body for c in review_rules([env, config, code, props]))
    assert aws_secret not in bodies and aws_id not in bodies  # a finding never quotes it


def test_placeholders_and_code_that_handles_secrets_are_not_findings() -> None:
    f = _file(
        "src/settings.py",
        [
            'AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"',
            'DB_PASSWORD = os.environ["DB_PASSWORD"]',
            'password = "changeme"',
            'api_key = "<your-api-key>"',
            'token = "${GITHUB_TOKEN}"',
            'secret = "xxxxxxxxxxxxxxxx"',
            'SLACK_TOKEN = "xoxb-dummy-token"',
            'password = "password"',
            "password = getpass.getpass()",
            'token_type = "bearer"',
        ],
    )
    assert _secret_findings([f]) == []


def test_secrets_in_test_data_are_one_low_finding_that_never_blocks() -> None:
    fixtures = [
        _file(
            "tests/test_login.py",
            ['client.login(password="password123")', f'K = "sk_live_{rand(24)}"'],
        ),
        _file("pkg/fixtures/users.json", [f'{{"password": "{rand(12)}"}}']),
        _file("testdata/tls.key", ["-----BEGIN RSA PRIVATE KEY-----", rand(64)]),
        _file("src/service_test.go", [f'token := "{rand(30)}"']),
    ]
    source = _file("src/app.py", ["def f():", "    return 1"])
    comments = review_rules([*fixtures, source])
    secret = [c for c in comments if "test data" in c.body]
    assert len(secret) == 1 and secret[0].severity == "low"
    assert (secret[0].path, secret[0].line) == ("tests/test_login.py", 1)
    for where in (
        "tests/test_login.py` line 2",
        "users.json` line 1",
        "tls.key` line 1",
        "service_test.go` line 1",
    ):
        assert where in secret[0].body
    assert not [c for c in comments if c.severity in BLOCKING]
    assert rule_score(comments) >= 95  # five fixtures cost what one low finding costs
    assert is_test_data("a/testdata/x.pem") and not is_test_data("src/contest.py")


def test_the_llm_prompt_masks_every_form_the_rules_find() -> None:
    google = "AIza" + rand(35)
    text = (
        f"DB_PASSWORD={rand(12)}\nkey = '{google}'\nAuthorization: Bearer {rand(32)}\n"
        f"url = 'postgres://app:{rand(12)}@db/app'\nsk_live_{rand(24)}\n"
        "token = request.headers['Authorization']\n"
    )
    masked = redact(text)
    assert google not in masked and "sk_live_" not in masked
    assert masked.count("[REDACTED]") == 5
    assert "postgres://app:[REDACTED]@db/app" in masked and "Bearer [REDACTED]" in masked
    assert "token = request.headers['Authorization']" in masked  # code keeps its shape


def test_a_dotenv_line_in_a_diff_is_masked_for_the_llm_like_the_rule_finds_it() -> None:
    env = _file(".env", ["DB_PASSWORD=swordfish", "DEBUG=true"])
    assert _secret_findings([env]) == [(".env", 1, "critical")]
    assert redact("R1 + DB_PASSWORD=swordfish") == "R1 + DB_PASSWORD=[REDACTED]"
    assert redact("password = swordfish") == "password = swordfish"  # code: a variable
