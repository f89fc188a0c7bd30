from pathlib import Path

from app.settings import Settings


def test_steps_path_list_is_split_on_colons(monkeypatch):
    monkeypatch.setenv("STEPLINE_STEPS", "a:b/c")
    assert Settings().steps == [Path("a"), Path("b/c")]


def test_redis_url_comes_from_plain_env_name(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://example:1/2")
    assert Settings().redis_url == "redis://example:1/2"


def test_log_level_takes_loggings_aliases_in_any_case(monkeypatch):
    # logging.basicConfig took WARN and FATAL (and lowercase) before the level was checked;
    # uvicorn, which gets the level too, knows only warning and critical.
    for given, level in [("warn", "WARNING"), ("Fatal", "CRITICAL"), ("debug", "DEBUG")]:
        monkeypatch.setenv("STEPLINE_LOG_LEVEL", given)
        assert Settings().log_level == level
