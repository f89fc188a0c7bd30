"""The one table of secret formats: real formats are found and masked, placeholders are not, and
the secrets the app itself holds are masked by value whatever their format."""

from __future__ import annotations

import random
import string
import subprocess
import sys
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.redact import (
    MASK,
    find_secrets,
    forget_known_secrets,
    mask_text,
    redact,
    redact_text,
    register_known_secrets,
    register_secret,
)

_rng = random.Random(20261201)  # fixed: a random body must not happen to look like "xxxxxx"
ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def digits(n: int) -> str:
    return rand(n, string.digits)


def pem(key: object, fmt: serialization.PrivateFormat) -> str:
    return (
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, fmt, serialization.NoEncryption()
        )
        .decode()
        .strip()
    )


AWS_ID, AWS_SECRET = "AKIA" + rand(16, string.ascii_uppercase + "234567"), rand(40, ALNUM + "/+")
JWT_SIGNED = jwt.encode({"sub": "4711", "name": "Ann", "iat": 1764547200}, rand(32), "HS256")
JWT_UNSIGNED = jwt.encode({"sub": "4711", "admin": True}, None, algorithm="none")  # type: ignore[arg-type]
RSA_PEM = pem(rsa.generate_private_key(65537, 2048), serialization.PrivateFormat.TraditionalOpenSSL)
EC_PEM = pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
SSH_PEM = pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.OpenSSH)

# (label, line that carries it, the secret itself). Shapes follow each provider's documented
# format; bodies are random so nothing here is a real credential.
REAL: list[tuple[str, str, str]] = [
    ("GitHub token", "GH={}", "ghp_" + rand(36)),
    ("GitHub token", "token: {}", "github_pat_" + rand(22) + "_" + rand(59)),
    ("Slack token", "SLACK_BOT_TOKEN={}", f"xoxb-{digits(12)}-{digits(13)}-{rand(24)}"),
    ("Slack token", "refresh {}", f"xoxe-1-{rand(140)}"),
    ("Slack token", "rotated {}", f"xoxe.xoxp-1-{rand(160)}"),
    ("Slack app token", "app_token = '{}'", f"xapp-1-A{rand(10).upper()}-{digits(13)}-{rand(64)}"),
    (
        "Slack webhook URL",
        "url: {}",
        f"https://hooks.slack.com/services/T{rand(10).upper()}/B{rand(10).upper()}/{rand(24)}",
    ),
    ("OpenAI key", "client = OpenAI(api_key='{}')", "sk-proj-" + rand(48)),
    ("Stripe key", "stripe.api_key = '{}'", "sk_live_" + rand(24)),
    ("Stripe key", "STRIPE={}", "sk_test_" + rand(24)),
    ("Stripe key", "restricted {}", "rk_live_" + rand(24)),
    ("Google API key", "maps?key={}&q=1", "AIza" + rand(35, ALNUM + "_-")),
    ("Google OAuth token", "Authorization: {}", "ya29." + rand(60, ALNUM + "_-")),
    ("Google refresh token", '"refresh_token": "{}"', "1//0" + rand(100, ALNUM + "_-")),
    ("Google client secret", '"client_secret": "{}"', "GOCSPX-" + rand(28, ALNUM + "_-")),
    ("AWS access key", "aws_access_key_id = {}", AWS_ID),
    ("JWT", "cookie session={}", JWT_SIGNED),
    ("JWT", "forged {}", JWT_UNSIGNED),
    ("bearer token", "curl -H 'Authorization: Bearer {}'", rand(40, ALNUM + "._-")),
    ("password in URL", "DATABASE_URL=postgres://app:{}@db.internal:5432/app", rand(16)),
    ("password in URL", "redis_url = 'redis://:{}@cache:6379/0'", rand(20)),
    ("private key", "{}", RSA_PEM),
    ("private key", "key = '''{}'''", EC_PEM),
    ("private key", "{}", SSH_PEM),
    # Assignments to secret-named names, in the forms code and configuration use.
    ("hard-coded secret", 'db_password = "{}"', rand(14)),
    ("hard-coded secret", 'self.dbPassword = "{}"', rand(12)),
    ("hard-coded secret", "DB_PASSWORD={}", rand(12)),
    ("hard-coded secret", '{{"password": "{}", "user": "ann"}}', rand(12)),
    ("hard-coded secret", "  client-secret: {}", rand(32)),
    ("hard-coded secret", "x-api-key = {}", rand(20)),
    ("hard-coded secret", "aws_secret_access_key = {}", AWS_SECRET),
    ("hard-coded secret", 'MY_APP_TOKEN := "{}"', rand(30)),
    ("hard-coded secret", "password: str = '{}'", rand(8) + digits(2)),
    ("hard-coded secret", 'conf["secret"] = "{}"', rand(18)),
    ("hard-coded secret", 'signing_key = "{}"', rand(40)),  # weak name, high entropy
    ("AWS secret key", f"{AWS_ID}:{{}}", AWS_SECRET),
]


@pytest.mark.parametrize(
    ("label", "line", "secret"), REAL, ids=[f"{r[0]}-{i}" for i, r in enumerate(REAL)]
)
def test_a_real_format_is_found_where_it_is_and_masked(label: str, line: str, secret: str) -> None:
    text = line.format(secret)
    hits = find_secrets(text, config=True)
    assert [h.label for h in hits if text[h.start : h.end] == secret] == [label]
    masked = redact_text(text)
    assert secret not in masked and MASK in masked
    if label != "AWS secret key":  # there the key id before it is masked too
        # Masking leaves the rest of the line readable (the name, the host, the header).
        assert line.format("\0").split("\0")[0].strip()[:6] in masked


PLACEHOLDERS = [
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    'password = "changeme"',
    'password = "password"',
    'DB_PASSWORD="${DB_PASSWORD}"',
    "api_key: <your-api-key>",
    'token = "xxxxxxxxxxxxxxxx"',
    'secret = "dummy-secret-value"',
    "SLACK_BOT_TOKEN=xoxb-your-token-here",
    "OPENAI_API_KEY=sk-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    'api_key = "{{ vault_api_key }}"',
    "password = ********",
    "Authorization: Bearer <token>",
    "postgres://user:password@localhost/db",
    'token = "000000000000000000000000"',
    "stripe.api_key = 'sk_test_XXXXXXXXXXXXXXXXXXXXXXXX'",
]


@pytest.mark.parametrize("line", PLACEHOLDERS)
def test_a_known_placeholder_is_not_a_secret(line: str) -> None:
    assert find_secrets(line, config=True) == []
    assert redact_text(line) == line


CODE = [
    "token = request.headers['Authorization']",
    "password = getpass.getpass()",
    "login(username=username, password=password)",
    'token_type = "bearer"',
    'api_key = os.environ["OPENAI_API_KEY"]',
    'password_reset_url = "/accounts/reset/"',
    'eos_token = "</s>"',
    'tokenizer = "bert-base-uncased"',
    "max_tokens = 4096",
    'secret_name = "tls-secret"',
    'cache_key = "user-profile-v2"',
    "self.password = password",
    "test_pass = await check(user)",
    "headers = {'Authorization': f'Bearer {token}'}",
    "The bearer authentication scheme sends a token.",
]


@pytest.mark.parametrize("line", CODE)
def test_code_that_handles_secrets_holds_none(line: str) -> None:
    assert find_secrets(line) == []
    assert mask_text(line) == line
    assert redact_text(line) == line  # also as the Workbench shows a step's source


def test_a_bare_word_is_a_secret_in_configuration_not_in_code() -> None:
    assert [h.label for h in find_secrets("DB_PASSWORD=swordfish", config=True)] == [
        "hard-coded secret"
    ]
    assert find_secrets("password = swordfish") == []  # a variable in code


def test_log_text_with_a_labelled_value_is_masked() -> None:
    assert redact_text("login failed: password=hunter2x for ann") == (
        "login failed: password=*** for ann"
    )
    assert redact_text("GET /hook?token=ab12cd34ef56&x=1") == "GET /hook?token=***&x=1"


def test_a_private_key_loses_its_whole_body_even_unterminated() -> None:
    body = RSA_PEM.splitlines()[1]
    masked = redact_text(f"loaded:\n{RSA_PEM}\ndone")
    assert body not in masked and masked.endswith("done")
    cut = RSA_PEM[: len(RSA_PEM) // 2]
    assert body not in redact_text(cut)


@pytest.fixture
def known() -> Iterator[None]:
    forget_known_secrets()
    yield
    forget_known_secrets()


@pytest.mark.usefixtures("known")
def test_secrets_the_app_holds_are_masked_by_value_whatever_their_format(tmp_path) -> None:
    webhook, push, workbench, slack = rand(20), rand(24), rand(32), rand(18)
    env_file = tmp_path / ".env"
    env_file.write_text(f"STEPLINE_WORKBENCH_TOKEN={workbench}\nSTEPLINE_PORT=3000\n")
    register_known_secrets(
        environ={
            "GITHUB_WEBHOOK_SECRET": webhook,
            "GMAIL_WEBHOOK_TOKEN": push,
            "SLACK_SIGNING_SECRET": slack,
            "GMAIL_TOKEN_FILE": "/srv/app/gmail-token.json",
            "GMAIL_TOKEN_URI": "https://oauth2.googleapis.com/token",
            "LLM_MAX_INPUT_TOKENS": "120000",
            "HOME": "/root",
            "PWD": "/srv/app",
            "OLDPWD": "/srv",
        },
        env_file=env_file,
    )
    text = f"sig {webhook} push:{push}; wb={workbench} ({slack}) /srv/app/gmail-token.json"
    masked = redact_text(text)
    for value in (webhook, push, workbench, slack):
        assert value not in masked
    # Names that only mention a secret (a file, an endpoint, a limit) are not secrets, nor is
    # the shell's working directory (PWD is not a password).
    assert "/srv/app/gmail-token.json" in masked
    assert redact({"note": f"uses {push}", "n": 120000}) == {"note": "uses ***", "n": 120000}


@pytest.mark.usefixtures("known")
def test_a_multi_line_secret_is_masked_line_by_line_and_short_values_are_ignored() -> None:
    register_secret("first-line-value\nsecond-line-value")
    register_secret("abc")  # too short to mask without garbling ordinary text
    assert redact_text("a second-line-value b abc") == "a *** b abc"


def test_nested_values_are_masked_by_key_and_by_content() -> None:
    token = "ghp_" + rand(36)
    value = {"api_token": "plain", "items": [{"note": f"use {token}"}], "n": 3}
    assert redact(value) == {"api_token": MASK, "items": [{"note": "use ***"}], "n": 3}


def test_keys_that_only_mention_a_secret_word_keep_their_values() -> None:
    usage = {"prompt_tokens": 812, "max_tokens": 4096, "token_type": "bearer", "api_key": "k1"}
    assert redact(usage) == {**usage, "api_key": MASK}
    headers = {
        "Authorization": "Basic YW5uOnB3",
        "X-Hub-Signature-256": "sha256=ab",
        "Accept": "*/*",
    }
    assert redact(headers) == {"Authorization": MASK, "X-Hub-Signature-256": MASK, "Accept": "*/*"}


# Text anyone can send (a PR description is up to 65,536 characters, a mail body more): one
# long run in which a format's start recurs made masking quadratic, minutes on the event loop.
HOSTILE_RUNS = {
    "kebab after a secret word": "'token' + '-a' * 32_000",
    "a repeated OpenAI prefix": "'sk-' * 21_000",
    "colons after a secret word": "'key ' + 'a:' * 32_000",
    "equals after a secret word": "'password ' + 'a=' * 32_000",
}


@pytest.mark.parametrize("what", list(HOSTILE_RUNS))
def test_a_long_hostile_run_is_masked_in_bounded_time(what: str) -> None:
    real = "sk-proj-" + "Q7wX2mZk9RtL4vBn8HcY3pJd6FgS1aUe"
    # In a process of its own: the regex engine holds the GIL, so a thread cannot be timed out.
    # A hang guard, not a speed figure: linear masking takes well under a second here, the
    # quadratic one took minutes.
    code = (
        "import sys; from app.redact import redact_text; "
        f"sys.stdout.write(redact_text({HOSTILE_RUNS[what]} + ' and then {real}')[-40:])"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"masking {what} did not finish in a minute")
    assert real not in done.stdout and done.stdout.endswith(f"and then {MASK}")
