"""How much of a large pull request the AI reviewer reads, at what cost in calls and tokens.

Each pull request is a real release-to-release diff of a well-known library (both sdists from
PyPI, cached in ~/.cache/stepline-bench, diffed locally into GitHub-style per-file patches),
plus the generated ~3,000-line PR the tests use. Each is reviewed end to end through the real
PyGithub and openai clients against the loopback GitHub and OpenAI; the OpenAI fake counts
`usage.prompt_tokens` with gpt-4o's real tokenizer (o200k_base).

Printed per PR, with the default settings and, beside it, a single call of the same size (what
one prompt can hold, the old behaviour): calls made, tokens estimated vs sent (as the server
counted them), changed lines in front of the LLM (source files, and all reviewable files),
the largest source files seen whole, and wall time (the median of --rounds runs; every other
figure is the same in each run).

    .venv/bin/python bench/github_review.py [--release httpx:0.22.0:0.23.0 ...]
    .venv/bin/python bench/github_review.py --quick   # the generated PR only: no downloads
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from _util import bench_parser, parse  # also puts the repository on sys.path

from agents.github.client import GithubClients
from agents.github.files import is_ignored, is_source
from agents.github.settings import ApiSettings, GithubEnv, GithubSettings
from agents.llm import USAGE_GROUP
from tests.agents.conftest import MemoryState
from tests.agents.github.review_harness import big_pull_files, run_review
from tests.fakes.common import LoopbackServer
from tests.fakes.github_patches import (
    ReleaseUnavailable,
    coverage,
    release_tree,
    tree_files,
)
from tests.fakes.github_server import FakeGithub

RELEASES = ("httpx:0.22.0:0.23.0", "requests:2.25.1:2.28.0", "flask:2.3.3:3.0.0")


async def measure(files: list[dict[str, Any]], settings: GithubSettings) -> dict[str, Any]:
    fake, state = FakeGithub(), MemoryState()
    with LoopbackServer(fake) as server:
        env = GithubEnv(token="test-token", api_url=server.url, _env_file=None)
        clients = GithubClients(env, ApiSettings())
        started = time.perf_counter()
        try:
            run = await run_review(fake, clients, files, settings, state=state)
        finally:
            clients.close()
        elapsed = time.perf_counter() - started
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    globs = settings.ignored_globs()
    reviewable = [f for f in files if f.get("patch") and not is_ignored(f["filename"], globs)]
    per_file = coverage(reviewable, run.prompts)
    src = {p: v for p, v in per_file.items() if is_source(p)}
    largest = sorted(src, key=lambda p: -src[p][1])[:5]
    return {
        "calls": len(run.requests),
        "estimated": await state.get(USAGE_GROUP, f"{day}:estimated_prompt_tokens", 0),
        "sent": await state.get(USAGE_GROUP, f"{day}:prompt_tokens", 0),
        "src": (sum(s for s, _ in src.values()), sum(n for _, n in src.values())),
        "all": (sum(s for s, _ in per_file.values()), sum(n for _, n in per_file.values())),
        "largest_whole": sum(1 for p in largest if src[p][0] == src[p][1]),
        "largest": len(largest),
        "seconds": elapsed,
    }


def _pct(pair: tuple[int, int]) -> str:
    shown, total = pair
    return f"{shown}/{total} ({100 * shown / total:.0f} %)" if total else "-"


def report(name: str, files: list[dict[str, Any]], multi: dict[str, Any], one: dict[str, Any]):
    changed = sum(f["changes"] for f in files)
    print(f"\n{name}: {len(files)} files, {changed} changed lines")
    print(f"  {'':26}{'default settings':>28}{'one call (same size)':>28}")
    rows = [
        ("LLM calls", "calls", str),
        ("tokens estimated", "estimated", str),
        ("tokens sent (server count)", "sent", str),
        ("estimate / sent", None, None),
        ("source lines shown", "src", _pct),
        ("all reviewable lines shown", "all", _pct),
        ("5 largest sources whole", None, None),
        ("time (s), median", "seconds", lambda v: f"{v:.2f}"),
    ]
    for label, key, fmt in rows:
        if label == "estimate / sent":
            values = [
                f"{m['estimated'] / m['sent']:.3f}" if m["sent"] else "-" for m in (multi, one)
            ]
        elif label == "5 largest sources whole":
            values = [f"{m['largest_whole']}/{m['largest']}" for m in (multi, one)]
        else:
            assert key is not None and fmt is not None
            values = [fmt(m[key]) for m in (multi, one)]
        print(f"  {label:26}{values[0]:>28}{values[1]:>28}")
    ratio = multi["src"][0] / max(one["src"][0], 1)
    print(f"  source lines shown, default vs one call: {ratio:.1f}x")


async def main() -> None:
    parser = bench_parser(__doc__ or "", quick="the generated PR only (no downloads), 1 round")
    parser.add_argument("--release", action="append", help="name:old:new (repeatable)")
    args = parse(parser)
    defaults = GithubSettings()
    one_call = GithubSettings(review={"max_calls": 1})
    cases: list[tuple[str, list[dict[str, Any]]]] = [("generated PR (tests)", big_pull_files())]
    for spec in args.release or ([] if args.quick else RELEASES):
        name, old, new = spec.split(":")
        try:
            files = tree_files(release_tree(name, old), release_tree(name, new))
        except ReleaseUnavailable as exc:
            print(f"\n{spec}: skipped ({exc})")
            continue
        cases.append((f"{name} {old} -> {new}", files))
    review = defaults.review
    print(
        f"review.max_input_tokens={review.max_input_tokens} "
        f"max_total_tokens={review.max_total_tokens} max_calls={review.max_calls}"
    )
    await measure(cases[0][1][:3], defaults)  # warm-up: imports and first connections
    for name, files in cases:
        runs = []
        for _ in range(max(args.rounds, 1)):  # interleaved, so both see the same load
            runs.append((await measure(files, defaults), await measure(files, one_call)))
        multi, one = runs[0]
        multi["seconds"] = statistics.median(m["seconds"] for m, _ in runs)
        one["seconds"] = statistics.median(o["seconds"] for _, o in runs)
        report(name, files, multi, one)


if __name__ == "__main__":
    asyncio.run(main())
