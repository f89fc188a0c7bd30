"""The one table of secret formats, used both to find secrets and to mask them.

Why one table: the review rules (agents/github/rules.py) report what `find_secrets` finds, and
everything that leaves the process (logs, spans, the Workbench, CLI output, LLM prompts, Slack)
is masked with the same hits, so a format the rules know is never shown in clear elsewhere.

Three kinds of entries:
- token formats that name themselves (`ghp_...`, `AKIA...`, `sk_live_...`, JWTs, PEM keys);
- secrets found by their context: `Bearer <token>`, `scheme://user:PASSWORD@`, an AWS secret next
  to its key id, and a value assigned to a secret-named name (`db_password = "..."`,
  `"apiKey": "..."`, `DB_PASSWORD=...` in .env, `token: ...` in YAML);
- secrets the app itself holds (webhook secrets, tokens, the Workbench token): registered by value
  at start (`register_known_secrets`), masked wherever they appear, whatever their format.

Known placeholders (`EXAMPLE`, `xxxx`, `dummy`, `changeme`, `<...>`, `${VAR}`, repeated
characters, the word "password" itself) are not secrets and are neither reported nor masked;
how a value or a name is judged lives in app/secret_values.py.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.secret_values import credible_assignment, name_strength, placeholder

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = [
    "FORMATS",
    "MASK",
    "SecretFormat",
    "SecretHit",
    "find_secrets",
    "forget_known_secrets",
    "looks_secret_key",
    "mask_entry",
    "mask_text",
    "redact",
    "redact_text",
    "register_known_secrets",
    "register_secret",
]

MASK = "***"


@dataclass(frozen=True)
class SecretFormat:
    """`pattern` matches the secret, or its context with the secret in group `value`.
    `judged`: the value is checked against placeholders (and, for assignments, for being a
    credible secret at all) before it counts. `bounded` and `hinted` keep the search fast."""

    label: str
    pattern: re.Pattern[str]
    judged: bool = True
    bounded: bool = True  # must not continue a word (checked in code: a leading \b is slow)
    hinted: bool = False  # only searched on lines that mention a secret-ish word


@dataclass(frozen=True)
class SecretHit:
    label: str
    start: int
    end: int


_PEM = (
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z))"
)
# Every unbounded run below starts at a literal or a name, and a rejected match is searched
# again from its next character: in one long run ("sk-sk-sk-...", "token-a-a-a-...", text
# anyone can put in a PR or a mail) each start would scan to the run's end, quadratic time on
# the event loop. So runs that can hold their own start are capped well above real lengths.
# A value assigned to a name: `name = "v"`, `name: v`, `"name": "v"`, `d["name"] = "v"`,
# `name := "v"`, `name => "v"`, `NAME=v`, `name: str = "v"`, `password == "v"`.
_ASSIGNMENT = (
    r"(?<![\w$@.])(?P<name>[A-Za-z_$@][\w$@.-]{0,63}(?:\[\s*[\"'][\w.-]+[\"']\s*\])?)[\"']?"
    r"\s*(?::\s*[A-Za-z_][\w\[\], .|]*?\s*(?==))?(?P<op>:=|=>|==|=|:|<-)(?![=>])\s*@?"
    r"(?:(?:[rbuRBU]{1,2})?(?P<q>[\"'`])(?P<qv>[^\"'`\n]*)(?P=q)|(?P<uv>[^\s\"'`,;&]{1,256}))"
)

FORMATS: tuple[SecretFormat, ...] = (
    SecretFormat("private key", re.compile(_PEM), judged=False, bounded=False),
    SecretFormat("AWS access key", re.compile(r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    SecretFormat(
        "AWS secret key",
        re.compile(
            r"(?:AKIA|ASIA)[0-9A-Z]{16}\b[\s\"',:;=|]{1,8}"
            r"(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
    ),
    SecretFormat("GitHub token", re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{40,})")),
    SecretFormat("GitLab token", re.compile(r"glpat-[A-Za-z0-9_-]{20,}")),
    SecretFormat("Slack token", re.compile(r"xox(?:[abposr]|e(?:\.xox[bp])?)-[A-Za-z0-9-]{10,}")),
    SecretFormat("Slack app token", re.compile(r"xapp-[0-9]+-[A-Za-z0-9-]{10,}")),
    SecretFormat(
        "Slack webhook URL",
        re.compile(
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{16,}"
        ),
    ),
    SecretFormat(
        "OpenAI key", re.compile(r"sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,256}")
    ),
    SecretFormat("Stripe key", re.compile(r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}")),
    SecretFormat("Stripe webhook secret", re.compile(r"whsec_[0-9A-Za-z+/=]{20,}")),
    SecretFormat("Google API key", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
    SecretFormat("Google OAuth token", re.compile(r"ya29\.[0-9A-Za-z_-]{20,}")),
    SecretFormat("Google refresh token", re.compile(r"1//0[0-9A-Za-z_-]{40,}")),
    SecretFormat("Google client secret", re.compile(r"GOCSPX-[0-9A-Za-z_-]{28}")),
    SecretFormat("SendGrid key", re.compile(r"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}")),
    SecretFormat("npm token", re.compile(r"npm_[A-Za-z0-9]{36}\b")),
    SecretFormat("PyPI token", re.compile(r"pypi-AgE[A-Za-z0-9_-]{50,}")),
    # Signed, or unsigned (alg "none": nothing after the second dot).
    SecretFormat(
        "JWT",
        re.compile(
            r"eyJ[A-Za-z0-9_-]{8,1024}\.eyJ[A-Za-z0-9_-]{8,}\.(?:[A-Za-z0-9_-]{8,}|(?![\w-]))"
        ),
    ),
    SecretFormat(
        "bearer token",
        re.compile(r"(?:[Bb]earer|BEARER)\s+(?P<value>[A-Za-z0-9._~+/-]{8,}=*)(?![\w/])"),
    ),
    SecretFormat(
        "password in URL",
        re.compile(r"://[^\s/:@'\"]*:(?P<value>[^\s/@'\"]+)@"),
        bounded=False,
    ),
    SecretFormat("hard-coded secret", re.compile(_ASSIGNMENT), bounded=False, hinted=True),
)


def _credible(fmt: SecretFormat, match: re.Match[str], *, config: bool) -> bool:
    if not fmt.judged:
        return True
    if fmt.label == "hard-coded secret":
        return credible_assignment(match, config=config)
    value = match.group("value") if "value" in fmt.pattern.groupindex else match.group(0)
    if fmt.label == "bearer token" and re.fullmatch(r"[a-z]+", value):
        return False  # prose: "bearer authentication"
    return not placeholder(value, 1 if fmt.label == "password in URL" else 4)


def _value_span(fmt: SecretFormat, match: re.Match[str]) -> tuple[int, int]:
    for group in ("value", "qv", "uv"):
        if group in fmt.pattern.groupindex and match.group(group) is not None:
            return match.span(group)
    return match.span()


def _search(
    fmt: SecretFormat, text: str, pos: int, end: int, config: bool, hits: list[SecretHit]
) -> None:
    while (match := fmt.pattern.search(text, pos, end)) is not None:
        start = match.start()
        if (not fmt.bounded or start == 0 or not _is_word_char(text[start - 1])) and _credible(
            fmt, match, config=config
        ):
            hits.append(SecretHit(fmt.label, *_value_span(fmt, match)))
            pos = max(match.end(), start + 1)
        else:
            # Look again inside what was rejected: in "failed: password=x" the first
            # match is `failed: ...`, and the real one starts within its value.
            pos = start + 1


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


_HINTS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "salt",
    "signature",
    "cookie",
    "session",
    "hmac",
    "jwt",
    "credential",
)


def _hinted_lines(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each line that mentions a secret-ish word: only those can hold an
    assignment to a secret-named name (str.find is much faster than a case-blind regex)."""
    low = text.lower()
    starts: set[int] = set()
    for word in _HINTS:
        at = low.find(word)
        while at != -1:
            starts.add(low.rfind("\n", 0, at) + 1)
            line_end = low.find("\n", at)
            at = -1 if line_end == -1 else low.find(word, line_end)
    spans = []
    for start in sorted(starts):
        line_end = text.find("\n", start)
        spans.append((start, len(text) if line_end == -1 else line_end))
    return spans


def find_secrets(text: str, *, config: bool = False) -> list[SecretHit]:
    """Every secret in `text`, by position of the secret itself (not its label or name), in
    order, overlaps removed. `config`: the text is key=value data (.env, INI, YAML, logs), so
    an unquoted bare word assigned to a secret name counts; in code it would be a variable."""
    hits: list[SecretHit] = []
    hinted: list[tuple[int, int]] | None = None
    for fmt in FORMATS:
        if fmt.hinted:
            hinted = _hinted_lines(text) if hinted is None else hinted
        for start, end in hinted if fmt.hinted and hinted is not None else [(0, len(text))]:
            _search(fmt, text, start, end, config, hits)
    hits.sort(key=lambda h: (h.start, -h.end))
    kept: list[SecretHit] = []
    for hit in hits:
        if kept and hit.start < kept[-1].end:
            continue  # inside a secret already found (a JWT inside a bearer token...)
        kept.append(hit)
    return kept


# -- secrets the app holds, masked by value ------------------------------------------------------

_known: set[str] = set()
_known_lock = threading.Lock()
_known_pattern: re.Pattern[str] | None = None
# Environment variables whose values are secrets though their names do not say so.
_SECRET_ENV_NAMES = frozenset({"PUSHOVER_USER", "NTFY_TOPIC", "PUSH_WEBHOOK_URL"})
# The shell's working directories: "pwd" abbreviates password in code, not here. Masking them
# would hide every path under the project in every log line.
_SHELL_ENV_NAMES = frozenset({"PWD", "OLDPWD"})
_SHORTEST_KNOWN = 6  # shorter values would mask ordinary words everywhere


def register_secret(value: str | None) -> None:
    """Mask `value` wherever it appears from now on (each line of a multi-line value too)."""
    global _known_pattern
    if not value:
        return
    parts = {value.strip(), *(line.strip() for line in value.splitlines())}
    fresh = {p for p in parts if len(p) >= _SHORTEST_KNOWN and not p.startswith("-----")}
    fresh -= _known
    if fresh:
        with _known_lock:
            _known.update(fresh)
            ordered = sorted(_known, key=len, reverse=True)
            _known_pattern = re.compile("|".join(re.escape(v) for v in ordered))


def forget_known_secrets() -> None:
    """Forget every registered value (tests that register their own)."""
    global _known_pattern
    with _known_lock:
        _known.clear()
        _known_pattern = None


def register_known_secrets(
    settings: Settings | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = Path(".env"),
) -> None:
    """Register every secret this process was given: secret-named environment variables (and
    the same names in `.env`, which pydantic-settings reads without exporting) and the
    Workbench token, so they are masked whatever their format."""
    sources: list[Mapping[str, str | None]] = [os.environ if environ is None else environ]
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values  # pydantic-settings' own .env reader

        sources.append(dotenv_values(env_file))
    for source in sources:
        for name, value in source.items():
            # By the same name rules as assignments: GMAIL_TOKEN_FILE or LLM_MAX_INPUT_TOKENS
            # hold no secret, GITHUB_WEBHOOK_SECRET and OPENAI_API_KEY do.
            if name.upper() in _SHELL_ENV_NAMES:
                continue
            if value and (name_strength(name) == 2 or name.upper() in _SECRET_ENV_NAMES):
                register_secret(value)
    token = getattr(settings, "workbench_token", None)
    if token is not None:
        register_secret(token.get_secret_value())


# -- masking ---------------------------------------------------------------------------------------


def mask_text(text: str, mask: str = MASK, *, config: bool = False) -> str:
    """`text` with every known secret value and every secret in the table replaced by `mask`."""
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub(mask, text)
    hits = find_secrets(text, config=config)
    for hit in reversed(hits):
        text = text[: hit.start] + mask + text[hit.end :]
    return text


def redact_text(text: str) -> str:
    """Runtime masking (logs, spans, Workbench, CLI): text there is key=value-like data."""
    return mask_text(text, MASK, config=True)


# Secret-named keys beside those the assignment rules name (`_name_strength`): headers and
# fields that carry credentials under other words.
_SECRET_KEY = re.compile(r"(?i)authorization|cookie|signature|private[_-]?key|password[_-]?hash")


def looks_secret_key(name: str) -> bool:
    """A dict key or variable name whose value is a secret: `api_token`, `DB_PASSWORD`,
    `Authorization`; not `prompt_tokens`, `token_type` or `password_reset_url`."""
    return name_strength(name) == 2 or bool(_SECRET_KEY.search(name))


def mask_entry(key: str, value: Any) -> Any:
    """A stored value as it may be shown: whole when its key names a secret, else redacted."""
    return MASK if looks_secret_key(key) and value not in (None, "") else redact(value)


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of `value` with secret-named keys and secret-looking strings masked."""
    if _depth > 20:
        return MASK  # too deep to inspect: hide rather than show unchecked
    if isinstance(value, dict):
        return {
            k: mask_entry(k, v)
            if isinstance(k, str) and looks_secret_key(k)
            else redact(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
