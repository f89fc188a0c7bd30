"""The flows' masker (agents/common/redact.py) over the runtime's one table: code keeps its shape,
mail loses labelled values."""

from agents.common.redact import find_secrets, redact, redact_mail


def test_mail_masks_labelled_values_and_every_known_token_format() -> None:
    oauth = "ya29." + "a0AfH6SMB" * 4
    text = f"Your verification code is 483920.\npassword: hunter2222\nBearer {oauth}\nsee you"
    out = redact_mail(text)
    assert "483920" not in out and "hunter2222" not in out and oauth not in out
    assert "verification code is [REDACTED]" in out and out.endswith("see you")


def test_code_keeps_secret_named_variables_that_hold_no_literal() -> None:
    line = "token = request.headers['Authorization']"
    assert redact(line) == line
    assert redact_mail("token: abcd1234") == "token: [REDACTED]"


def test_mail_prose_after_a_label_stays_readable_for_the_classifiers() -> None:
    prose = "Your password expires soon, token critical, confirm your password immediately"
    assert redact_mail(prose) == prose
    assert redact_mail("PIN 4821 and password hunter22") == "PIN [REDACTED] and password [REDACTED]"
    assert redact_mail("the password is swordfish") == "the password is [REDACTED]"


def test_an_unterminated_private_key_is_masked_to_the_end() -> None:
    text = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBn"
    assert "MHcCAQEE" not in redact_mail(text) and "MHcCAQEE" not in redact(text)
    assert [hit.label for hit in find_secrets(text)] == ["private key"]


def test_the_flows_mask_with_the_runtimes_table() -> None:
    """What a log line loses, an LLM prompt or Slack message loses too (same formats)."""
    from app.redact import redact_text

    samples = [
        "AIza" + "SyB8mQ1vX9c2LnM5pR7sT3uV0wZ4yA6dF8h",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg",
        "sk_live_" + "51HqLyjWDarjtT1zdp7dcXyZ",
    ]
    for secret in samples:
        line = f"got {secret} back"
        assert redact(line) == "got [REDACTED] back" and redact_text(line) == "got *** back"
    assert redact("Authorization: Bearer 9f3kQ7zLm2Xv8Rp4") == "Authorization: Bearer [REDACTED]"
    assert redact("amqp://svc:Rb82kdQ0@mq:5672//") == "amqp://svc:[REDACTED]@mq:5672//"
