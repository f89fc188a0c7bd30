"""The GitHub pull-request review flow: webhook intake, reviewers, posting, merge, report.

Modules, one concept each: `settings` (config/github.yaml + env), `webhook` (signature and
routing), `client` (PyGithub auth), `diff` (hunks and positions), `files` (selection,
ranking, rendering), `plan` (which parts of the diff go into which LLM call), `rules` and
`reviewer` (built-in and AI reviewers), `posting` (where each comment goes, the review body),
`publish` (sending it so no comment costs the review), `memory` (stored AI results, posted
fingerprints), `review` (the whole review), `merge` (policy), `report` (daily figures),
`plugin` (start-up check). Steps import the module they need; nothing here imports the runtime.
"""

__all__: list[str] = []
