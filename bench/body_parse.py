"""What the edge's body parser costs beside plain `json.loads`, on GitHub's real webhook
deliveries (every example of npm's `@octokit/webhooks-examples`, fetched with `npm pack` into
~/.cache/stepline-bench/ on first use) and on one 25 MB delivery built from them (GitHub's
largest).

    .venv/bin/python bench/body_parse.py [--rounds 5]

Prints microseconds per body for both, interleaved, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.server.body import parse_json
from bench._util import Rounds

PACKAGE = "@octokit/webhooks-examples@7.6.1"
CACHE = Path.home() / ".cache" / "stepline-bench" / "octokit-webhooks-examples-7.6.1"


def deliveries() -> list[bytes]:
    root = CACHE / "package"
    if not (root / "api.github.com" / "index.json").is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to fetch the webhook examples")
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=CACHE, check=True, timeout=120)
        with tarfile.open(sorted(CACHE.glob("*.tgz"))[-1]) as tar:
            tar.extractall(CACHE, filter="data")
    out = []
    for index in sorted(root.glob("*/index.json")):
        for entry in json.loads(index.read_text(encoding="utf-8")):
            out += [json.dumps(example).encode() for example in entry["examples"]]
    return out


def per_body(parse: object, bodies: list[bytes], repeat: int) -> float:
    fn = parse  # type: ignore[assignment]
    started = time.perf_counter()
    for _ in range(repeat):
        for body in bodies:
            fn(body)  # type: ignore[operator]
    return (time.perf_counter() - started) / (repeat * len(bodies)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bodies = deliveries()
    size = sum(map(len, bodies)) / len(bodies)
    big = b"[" + b",".join(bodies * (25_000_000 // sum(map(len, bodies)) + 1)) + b"]"
    print(
        f"{len(bodies)} real deliveries, {size / 1000:.1f} kB on average; one of "
        f"{len(big) / 1e6:.1f} MB"
    )
    rounds = Rounds(args.rounds, unit="µs/body")
    rounds.run(
        {
            "json.loads": lambda: per_body(json.loads, bodies, 20),
            "parse_json": lambda: per_body(parse_json, bodies, 20),
            "json.loads 25 MB": lambda: per_body(json.loads, [big], 1),
            "parse_json 25 MB": lambda: per_body(parse_json, [big], 1),
        }
    )
    print(
        f"real deliveries: parse_json {rounds.median('parse_json'):.1f} µs, json.loads "
        f"{rounds.median('json.loads'):.1f} µs: "
        f"{rounds.ratio('parse_json', 'json.loads'):.2f}x"
    )
    print(
        f"25 MB delivery: parse_json {rounds.median('parse_json 25 MB') / 1000:.0f} ms, "
        f"json.loads {rounds.median('json.loads 25 MB') / 1000:.0f} ms: "
        f"{rounds.ratio('parse_json 25 MB', 'json.loads 25 MB'):.2f}x"
    )


if __name__ == "__main__":
    main()
