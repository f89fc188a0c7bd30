"""Small pieces both flows (agents/github, agents/gmail) need and neither may import from the
other: the per-process collaborator cache, secret masking for text bound for an LLM or Slack,
and the hot-reloaded YAML settings loader behind each flow's `config/*.yaml`.
"""
