"""The GitHub pull-request review flow: webhook intake, reviewers, posting, merge, report.

Modules, one concept each: `settings` (config/github.yaml + env), `webhook` (signature and
routing), `client` (PyGithub auth), `diff` (hunks and positions), `files` (selection and
budget), `rules` and `reviewer` (built-in and AI reviewers), `posting` (one review per head),
`review` (the whole review), `merge` (policy), `report` (daily figures), `plugin` (start-up
check). Steps import the module they need; nothing here imports the runtime.
"""

__all__: list[str] = []
