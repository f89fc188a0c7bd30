"""`stepline gmail classify|train` through Typer's CliRunner, and the start-up check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.gmail import plugin
from agents.gmail.cli import app
from tests.agents.gmail.conftest import EML

runner = CliRunner()


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No LLM, a config dir of our own, the model file under tmp_path."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LLM_BASE_URL", "LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "gmail.yaml").write_text(
        f"spam:\n  model_path: {tmp_path / 'model.json'}\n"
        "priority:\n  vip_senders: ['*@bigcorp.com']\n"
    )
    monkeypatch.setenv("STEPLINE_CONFIG_DIR", str(config))
    monkeypatch.setenv("GMAIL_TOKEN_FILE", str(tmp_path / "token.json"))
    return tmp_path


def lines(output: str) -> dict[str, dict]:
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {Path(r["file"]).name: r for r in rows}


def test_classify_prints_one_json_line_per_file() -> None:
    names = [
        "phishing.eml",
        "urgent_outage.eml",
        "not_urgent_urgently.eml",
        "vip_boss.eml",
        "vip_spoofed.eml",
        "ham_plain.eml",
    ]
    result = runner.invoke(app, ["classify", *(str(EML / n) for n in names)])
    assert result.exit_code == 0, result.output
    rows = lines(result.output)
    assert list(rows) == names
    assert set(rows["phishing.eml"]) == {
        "file",
        "spam_score",
        "is_spam",
        "unsure",
        "priority",
        "reasons",
    }
    assert rows["phishing.eml"]["is_spam"] and rows["phishing.eml"]["priority"] == "normal"
    assert rows["urgent_outage.eml"]["priority"] == "high"
    assert "urgent keyword: urgent" in rows["urgent_outage.eml"]["reasons"]
    assert rows["not_urgent_urgently.eml"]["priority"] == "normal"
    assert rows["vip_boss.eml"] == {**rows["vip_boss.eml"], "is_spam": False, "priority": "high"}
    assert rows["vip_spoofed.eml"]["is_spam"]  # VIP address, failed DMARC: no free pass
    # rules that find nothing give their calibrated base rate, not 0
    assert rows["ham_plain.eml"]["spam_score"] < 0.1 and not rows["ham_plain.eml"]["is_spam"]


def test_classify_missing_file_fails_with_a_reason() -> None:
    result = runner.invoke(app, ["classify", str(EML / "ham_plain.eml"), "/nonexistent.eml"])
    assert result.exit_code == 1
    assert "cannot read /nonexistent.eml" in result.output
    assert len(lines(result.output)) == 1


def test_classify_refuses_an_invalid_config(offline: Path) -> None:
    (offline / "config" / "gmail.yaml").write_text("spam:\n  action: shred\n")
    result = runner.invoke(app, ["classify", str(EML / "ham_plain.eml")])
    assert result.exit_code == 1 and "spam.action" in result.output
    assert "Traceback" not in result.output


def test_train_from_folders_then_classify_uses_the_model(offline: Path) -> None:
    spam_dir, ham_dir = offline / "spam", offline / "ham"
    spam_dir.mkdir()
    ham_dir.mkdir()
    for n in ("phishing.eml", "vip_spoofed.eml"):
        shutil.copy(EML / n, spam_dir / n)
    for n in ("ham_plain.eml", "multipart_latin1.eml", "koi8r_base64.eml"):
        shutil.copy(EML / n, ham_dir / n)
    result = runner.invoke(app, ["train", "--spam", str(spam_dir), "--ham", str(ham_dir)])
    assert result.exit_code == 0, result.output
    assert "learned 2 spam and 3 wanted" in result.output
    assert (offline / "model.json").exists()
    result = runner.invoke(app, ["classify", str(EML / "phishing.eml")])
    assert any(
        r.startswith("bayes model: ") for r in lines(result.output)["phishing.eml"]["reasons"]
    )


def test_train_needs_input_and_real_folders(offline: Path) -> None:
    assert "nothing to learn" in runner.invoke(app, ["train"]).output
    result = runner.invoke(app, ["train", "--spam", str(offline / "nope")])
    assert result.exit_code == 1 and "not a directory" in result.output


def test_status_reports_every_problem(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GMAIL_CREDENTIALS_FILE", raising=False)
    monkeypatch.chdir(offline)  # no credentials.json here
    config = offline / "config" / "gmail.yaml"
    nothing = plugin.status()
    assert not nothing.configured and nothing.enabled is None
    assert "stepline gmail connect" in nothing.turn_on
    monkeypatch.setenv("GMAIL_CREDENTIALS_FILE", str(offline / "client.json"))
    half = plugin.status()
    assert half.configured
    assert [p.split(" (")[0] for p in half.problems] == [
        "Gmail is not connected",
        f"GMAIL_CREDENTIALS_FILE {offline / 'client.json'} does not exist:"
        " download the OAuth client JSON from Google Cloud",
    ]
    (offline / "token.json").write_text("{not json")
    assert "cannot be read" in plugin.status().problems[0]
    (offline / "token.json").write_text('{"refresh_token": "r"}')
    assert "lacks client_id, client_secret" in plugin.status().problems[0]
    grant = {"refresh_token": "r", "client_id": "c", "client_secret": "s"}
    (offline / "token.json").write_text(json.dumps(grant))
    assert plugin.status().problems == []
    config.write_text("mode: push\nenabled: true\n")
    pushed = plugin.status()
    assert pushed.enabled is True
    assert ["push mode needs push.topic and push.audience" in p for p in pushed.problems] == [True]
    config.write_text("enabled: false\nmode: push\n")
    assert plugin.status().enabled is False
    assert plugin.name == "gmail" and plugin.cli is app
