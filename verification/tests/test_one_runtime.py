"""One runtime: the end-to-end tests, benchmarks and scripts run what `runbot` runs.

The engine suite once ran on a runtime of its own (PTB's Updater, no fast path,
no per-person processor) while production ran the supervisor: green tests
proved a runtime nobody used. These fail if a second one comes back.
"""

import re
from pathlib import Path

import pytest
from telegram.ext import Application

from bots.botrunner import BotRunner
from verification.fastpath import fast_path
from verification.maintenance import maintain

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".venv", "node_modules", "var", ".git", "__pycache__"}
# Importing the old runtime, or polling with PTB's own Updater.
SECOND_RUNTIME = re.compile(
    r"verification\.runner\b|from verification import[^\n]*\brunner\b"
    r"|\.updater\.start_polling\(|\.run_polling\("
)
# The emulator's own test of PTB's polling (its getUpdates must suit PTB's Updater):
# it runs no Nezuko code.
ALLOWED = {"bots/tests/test_emulator_application.py"}


def python_files() -> list[Path]:
    return [
        path for path in ROOT.rglob("*.py")
        if not SKIP_DIRS & set(path.relative_to(ROOT).parts)
    ]


def test_no_module_brings_a_second_runtime() -> None:
    this = Path(__file__).resolve()
    offenders = [
        str(path.relative_to(ROOT))
        for path in python_files()
        if path != this and str(path.relative_to(ROOT)) not in ALLOWED
        and SECOND_RUNTIME.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert offenders == []
    assert not (ROOT / "verification" / "runner.py").exists()


def test_the_guard_would_see_one() -> None:
    assert SECOND_RUNTIME.search("from verification import ALLOWED_UPDATES, runner\n")
    assert SECOND_RUNTIME.search("await application.updater.start_polling()")
    assert not SECOND_RUNTIME.search("from verification import ALLOWED_UPDATES\n")


@pytest.mark.django_db(transaction=True)
async def test_the_world_runs_runbots_composition(world) -> None:
    runner = world.runner
    assert isinstance(runner, BotRunner)
    assert isinstance(world.application, Application)
    assert world.application is runner.application and world.engine is runner.engine
    # Updates come from the runner's own polling, not PTB's Updater.
    assert world.application.updater is None
    assert runner.options.fast_path is fast_path
    assert maintain in runner.options.bot_tasks
    assert world.application.update_processor is runner.processor
