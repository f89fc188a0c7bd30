"""Steps and flows as JSON: what `stepline steps` prints and the Workbench draws."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.registry import Registry, Step

__all__ = ["flow_graph", "step_view"]


def step_view(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"file": str(step.file), "async": step.is_async}
    for name, value in step.config:
        out[name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """A config value as JSON can carry it: a model class as its schema, a key function
    (`key=lambda data: ...`) by its name, since a function cannot be serialised."""
    if isinstance(value, type) and issubclass(value, BaseModel):
        return {"model": value.__name__, "schema": value.model_json_schema()}
    if isinstance(value, BaseModel):
        return {name: _plain(item) for name, item in value}
    if callable(value):
        name = getattr(value, "__name__", "<lambda>")
        return "fn()" if name == "<lambda>" else f"{name}()"
    return value


def flow_graph(registry: Registry) -> dict[str, Any]:
    """Nodes are steps, edges join an emitter to each subscriber of the topic."""
    nodes = [
        {
            "id": s.name,
            "kind": s.kind,
            "flows": s.config.flows or ["default"],
            "emits": s.emits,
            "subscribes": getattr(s.config, "subscribes", []),
        }
        for s in registry.steps.values()
    ]
    edges = [
        {"from": s.name, "to": sub, "topic": topic}
        for s in registry.steps.values()
        for topic in s.emits
        for sub in registry.subscribers.get(topic, ())
    ]
    from app.plugins import declared_outputs

    emitted = {t for s in registry.steps.values() for t in s.emits}
    # Outputs a flow declares for users' own steps are drawn as such, not as warnings.
    outputs = sorted((emitted - set(registry.subscribers)) & declared_outputs())
    return {
        "nodes": nodes,
        "edges": edges,
        "flows": registry.flows,
        "outputs": outputs,
        "orphans": {
            "no_subscriber": sorted(emitted - set(registry.subscribers) - set(outputs)),
            "no_emitter": sorted(set(registry.subscribers) - emitted),
        },
    }
