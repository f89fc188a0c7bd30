"""The names a step author imports from `app` stay deliberate."""

import app
from app import ApiConfig, EventConfig
from app.registry import load_registry
from tests.support import write_steps


def test_all_lists_exactly_the_public_names():
    public = sorted(n for n in vars(app) if not n.startswith("_") and n[0].isupper())
    assert sorted(app.__all__) == public


def test_typed_configs_load_like_dicts(tmp_path):
    write_steps(
        tmp_path,
        {
            "typed_step.py": """
        from app import EventConfig

        config = EventConfig(name="Typed", subscribes=["a"], retries=5)

        async def handler(data, ctx):
            pass
    """
        },
    )
    registry = load_registry([tmp_path])
    assert registry.errors == []
    config = registry.steps["Typed"].config
    assert isinstance(config, EventConfig) and config.retries == 5
    assert not isinstance(config, ApiConfig)
