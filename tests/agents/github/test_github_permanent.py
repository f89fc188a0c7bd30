"""Missing GitHub credentials are a misconfiguration: the run is dead-lettered at once with the
setting to fix, not retried until its attempts run out."""

from __future__ import annotations

from app.testing import Harness
from tests.support import write_steps

STEP = {
    "needs_github_step.py": """
        from agents.github.client import GithubClients
        from agents.github.settings import GithubEnv

        config = {"type": "event", "name": "NeedsGithub", "subscribes": ["gh"], "retries": 3}

        def handler(data, ctx):
            GithubClients(GithubEnv(_env_file=None)).for_installation(None).get_user()
    """,
}


async def test_no_credentials_dead_letters_at_once(tmp_path, monkeypatch):
    for name in ("GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    steps = write_steps(tmp_path / "steps", STEP)
    async with Harness([steps], db=tmp_path / "t.db") as h:
        await h.emit("gh", {})
        await h.drain()
        (dead,) = await h.dead_letters()
        spans = [s for s in await h.spans() if s.step == "NeedsGithub"]
    assert dead.attempts == 1 and len(spans) == 1
    assert "GithubConfigError: no GitHub credentials: set GITHUB_TOKEN" in dead.error
