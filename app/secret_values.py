"""What makes a matched value a credible secret, and a name one that holds a secret.

Split from app/redact.py (which holds the table of formats) because these are judgements, tuned
on real code: a placeholder is not a secret, `token_type = "bearer"` names no secret, in code a
bare word after `password =` is a variable, and a `signing_key` counts only when its value is
random enough.
"""

from __future__ import annotations

import math
import re

__all__ = ["credible_assignment", "high_entropy", "name_strength", "placeholder"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PLACEHOLDER_WORDS = re.compile(
    r"(?i)example|xxxx|dummy|change_?-?me|placeholder|sample|fake|your[_-]|redacted|\*\*\*"
    r"|insert[_-]|replace[_-]?me|not[_-]?a[_-]?(?:real|secret)"
)
# Values that are a word for a secret, for no value at all, or a keyword of code.
_SECRET_WORDS = _words(
    "password passwd pass pwd secret token apikey key passphrase none null nil true false "
    "undefined required optional string str bytes hidden empty default value bearer basic "
    "await async self this new lambda yield return not and or function"
)
# A secret word ends at a name-part boundary: `db_password`, `dbPassword2`, `theapikey`, but
# not `tokenizer`, `max_tokens`, `bypass`, `theapikeyforfoo`.
_STRONG_WORD = re.compile(
    r"(?:password|passwd|passphrase|pwd|secret|token|api_?key|private_?key|access_?key"
    r"|credentials?|(?:^|(?<=_))pass)(?=_|\d|$)"
)
# What a name ends with when it holds something *about* a secret rather than the secret.
_METADATA = _words(
    "type types name names field fields env var variable header headers param url uri endpoint "
    "path file filename dir id ids length len size count min max limit regex re pattern prefix "
    "suffix format fmt version policy expiry expires expiration ttl timeout hash label title help "
    "message msg prompt placeholder class cls kind mode scope scopes required enabled exists "
    "valid validator error errors attr attribute column col option setting flag index idx "
    "position pos start end source provider manager store service backend method algorithm "
    "algo style widget input form button description doc docs template example hint rule rules "
    "reset changed change location loc dict map list set key_name lifetime age"
)
_WEAK_ENDINGS = ("key", "salt", "signature", "auth", "cookie", "sessionid", "hmac", "jwt")
_IDENTIFIER = re.compile(
    r"[a-z]+(?:[_.-][a-z]+)+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|(?:[A-Z][a-z]+){2,}|[a-z]+(?:[A-Z][a-z]+)+"
)
_SHORTEST_VALUE = 4  # "root", "1234": weak, but real passwords (bandit labels them)
_CODE_WORD = re.compile(r"[\d.]+|[A-Za-z_]\w*(?:\.\w+)+")
_PATHLIKE = re.compile(r"(?:\.{0,2}/|~/)\S*|[a-z0-9_.-]+(?:/[a-z0-9_.-]+)+/?|\S+\.[a-z]{2,4}")


def placeholder(value: str, shortest: int = 4) -> bool:
    v = value.strip()
    if len(v) < shortest or v.startswith(("${", "{", "<", "%(", "$", "!", "&", "*")) or "{{" in v:
        return True
    if "%s" in v or "{}" in v or re.search(r"(.)\1{5}", v):
        return True  # a format string, or "xxxxxx" / "000000"
    if len(set(v.lower())) <= 3 or _PLACEHOLDER_WORDS.search(v):
        return True
    return re.sub(r"[^a-z]", "", v.lower()) in _SECRET_WORDS and not re.search(r"\d", v)


def _entropy(value: str) -> float:
    counts = {c: value.count(c) for c in set(value)}
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def high_entropy(value: str) -> bool:
    if len(value) < 16 or not (re.search(r"\d", value) and re.search(r"[A-Za-z]", value)):
        return False
    hexadecimal = re.fullmatch(r"[0-9a-fA-F]+", value) is not None
    return _entropy(value) >= (3.0 if hexadecimal else 3.7)


def name_strength(name: str) -> int:
    """2 for a name that holds a secret (`db_password`, `apiKey`, `SLACK_TOKEN`,
    `my_secret_password_for_email`), 1 for one that may (`signing_key`, `salt`: only
    high-entropy values count), 0 otherwise (`token_type`, `password_reset_url`)."""
    parts = [p for p in re.split(r"[.\[\]\"'$@]", name) if p]
    if not parts:
        return 0
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", parts[-1]).lower().replace("-", "_")
    for found in _STRONG_WORD.finditer(snake):
        tail = [t for t in snake[found.end() :].split("_") if t and not t.isdigit()]
        if not tail or tail[-1] not in _METADATA:
            return 2
    compact = re.sub(r"[\d_]+", "", snake)
    return 1 if compact.endswith(_WEAK_ENDINGS) else 0


def credible_assignment(match: re.Match[str], *, config: bool) -> bool:
    strength = name_strength(match.group("name"))
    quoted = match.group("q") is not None
    value = match.group("qv") if quoted else match.group("uv")
    if not strength or not value or placeholder(value) or re.search(r"\s", value):
        return False
    if value.lower() in match.group("name").lower() or "://" in value:
        return False  # `token = "token_header"`-style names; URLs are judged on their own
    if _IDENTIFIER.fullmatch(value) or _PATHLIKE.fullmatch(value):
        return False  # a field, header, env-var or file name, not its content
    if not quoted:
        if re.search(r"[()\[\]{}<>]", value) or _CODE_WORD.fullmatch(value):
            return False  # code: a call, an index, a number, an attribute
        name, op = match.group("name"), match.group("op")
        # NAME=value with no spaces is how .env files and shells write it, not how code does.
        env_style = name.isupper() and f"{name}{op}{value}" in match.group(0)
        data = config or env_style
        if not data and not (re.search(r"\d", value) and re.search(r"[A-Za-z]", value)):
            return False  # in code a bare word is a variable; in .env / INI / YAML it is data
    if strength == 1:
        return high_entropy(value)
    return len(value) >= _SHORTEST_VALUE
