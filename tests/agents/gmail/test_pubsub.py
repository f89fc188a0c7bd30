"""OIDC verification of Pub/Sub pushes, with tokens signed by the fake's own RSA key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agents.gmail.errors import PushRejected
from agents.gmail.pubsub import JWKSKeys, StaticKeys, parse_push, verify_push_token
from tests.fakes.common import LoopbackServer
from tests.fakes.pubsub import SERVICE_ACCOUNT, FakePubSub

AUDIENCE = "https://mail-hooks.example.com/webhooks/gmail"


@pytest.fixture(scope="module")
def pubsub() -> Iterator[tuple[FakePubSub, str]]:
    fake = FakePubSub()
    with LoopbackServer(fake) as server:
        yield fake, server.url


def test_token_from_the_published_keys_with_the_right_audience_passes(pubsub) -> None:
    fake, url = pubsub
    keys = JWKSKeys(f"{url}/oauth2/v3/certs")
    claims = verify_push_token(
        f"Bearer {fake.token(AUDIENCE)}",
        audience=AUDIENCE,
        keys=keys,
        service_account=SERVICE_ACCOUNT,
    )
    assert claims["email"] == SERVICE_ACCOUNT
    verify_push_token(f"Bearer {fake.token(AUDIENCE)}", audience=AUDIENCE, keys=keys)
    assert len(fake.calls(r"/oauth2/v3/certs")) == 1  # keys are cached


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda f: f.token("https://other.example/hook"), "another audience"),
        (lambda f: f.token(AUDIENCE, lifetime=-600), "expired"),
        (lambda f: f.token(AUDIENCE, issuer="https://evil.example"), "not issued by Google"),
        (
            lambda f: f.token(AUDIENCE, email="someone@else.iam.gserviceaccount.com"),
            "another service account",
        ),
        (
            lambda f: f.token(
                AUDIENCE, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
            ),
            "invalid",
        ),
        (lambda f: "not-a-jwt", "invalid"),
    ],
)
def test_bad_tokens_are_rejected_with_a_reason(pubsub, make, reason: str) -> None:
    fake, _ = pubsub
    token = make(fake)
    keys = StaticKeys({fake.kid: fake.public_key})
    with pytest.raises(PushRejected, match=reason) as err:
        verify_push_token(
            f"Bearer {token}", audience=AUDIENCE, keys=keys, service_account=SERVICE_ACCOUNT
        )
    # no part of the token (header, claims, signature) is quoted back
    assert all(part not in str(err.value) for part in token.split(".") if part)


def test_missing_header_or_audience_setting_is_refused(pubsub) -> None:
    fake, _ = pubsub
    keys = StaticKeys({fake.kid: fake.public_key})
    with pytest.raises(PushRejected, match="without a Bearer"):
        verify_push_token(None, audience=AUDIENCE, keys=keys)
    with pytest.raises(PushRejected, match=r"push\.audience"):
        verify_push_token(f"Bearer {fake.token(AUDIENCE)}", audience="", keys=keys)


def test_push_body_is_decoded(pubsub) -> None:
    fake, _ = pubsub
    notice = parse_push(fake.body("me@example.com", 4242))
    assert (notice.email, notice.history_id) == ("me@example.com", "4242")
    assert notice.message_id.startswith("pubsub-")
    with pytest.raises(ValueError, match="not a Gmail Pub/Sub push"):
        parse_push({"message": {"data": "!!"}})
