"""The README's step and Harness examples, in a project outside this repository that installed
Stepline into a fresh virtualenv, run with plain `pytest` and no configuration.

Offline and quick: the package is built from a copy of the sources without build isolation,
and its dependencies come from this repository's virtualenv through a `.pth` file, so nothing
is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT

BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def readme_files() -> dict[str, str]:
    """Every python block of the README that opens with `# steps/...` or `# tests/...`."""
    files = {}
    for block in BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")):
        first = block.split("\n", 1)[0]
        if first.startswith(("# steps/", "# tests/")):
            files[first[2:].strip()] = block
    return files


def clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STEPLINE_", "PYTHON", "PYTEST")) and k != "VIRTUAL_ENV"
    }


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("fresh")
    assert not base.resolve().is_relative_to(ROOT)
    source = base / "src"
    for part in ("app", "agents"):
        shutil.copytree(
            ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    env = base / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120
    )
    python = env / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    # Dependencies (FastAPI, pytest, ...) come from the repository's environment, read-only.
    Path(site, "stepline_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    yield python


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """The README's orders example as a project of its own: steps and tests, no config."""
    files = readme_files()
    assert "tests/test_orders.py" in files and "steps/orders/place_order_step.py" in files
    for name, text in files.items():
        path = tmp_path / "shop" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "shop"


def pytest_in(python: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )


def test_stepline_is_imported_from_the_fresh_install(venv: Path, shop: Path) -> None:
    where = subprocess.run(
        [str(venv), "-c", "import app; print(app.__file__)"],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv.parent.parent)


def test_readme_harness_example_passes_with_plain_pytest(venv: Path, shop: Path) -> None:
    done = pytest_in(venv, shop)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "not natively supported" not in done.stdout + done.stderr
    # Nothing for a newcomer to puzzle over either (pytest-asyncio's loop-scope deprecation).
    assert "warning" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr


def test_it_passes_without_pytest_asyncio_too(venv: Path, shop: Path) -> None:
    done = pytest_in(venv, shop, "-p", "no:asyncio")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_a_failing_step_fails_the_test(venv: Path, shop: Path) -> None:
    receipt = shop / "steps" / "orders" / "send_receipt_step.py"
    receipt.write_text(receipt.read_text().replace('"receipts")', '"receipts", by=2)'))
    done = pytest_in(venv, shop)
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout


def test_a_mode_the_project_chose_is_kept(venv: Path, shop: Path) -> None:
    (shop / "pytest.ini").write_text("[pytest]\nasyncio_mode = strict\n")
    done = pytest_in(venv, shop)
    # Strict mode runs only marked tests: the unmarked README test is not run as async.
    assert "1 passed" not in done.stdout, done.stdout
    marked = shop / "tests" / "test_orders.py"
    marked.write_text("import pytest\n\npytestmark = pytest.mark.asyncio\n" + marked.read_text())
    done = pytest_in(venv, shop)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr
