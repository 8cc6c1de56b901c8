"""What speaking every reader's language costs.

    .venv/bin/python benchmarks/languages.py [--rounds 200000]

Three figures, in process, no database or Telegram:

1. the group language tally on the hot path (`groups.languages.Tally.note`, called
   for every member checked): a member already counted, and a new member in a group
   whose 2,000 remembered members are full (one forgotten); and `most_common`, read
   once per warning or alert;
2. rendering a raid warning naming 15 of 50 people, in English and in each shipped
   language (with a catalog compiled, translated; without, the English through the
   same `speaking` switch): microseconds per render;
3. the command menus set at start-up: how many, and the calls a restart costs.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import scratch  # noqa: E402, F401  (sets Django up)
from groups import languages  # noqa: E402
from groups.config import ChannelConfig  # noqa: E402
from verification import command_menus, warnings  # noqa: E402
from verification.updates import Person  # noqa: E402


def per_call(function, rounds: int) -> float:
    """Microseconds per call, the best of three runs."""
    return min(timeit.repeat(function, number=rounds, repeat=3)) / rounds * 1e6


def tally(rounds: int) -> None:
    counted = languages.Tally()
    for user_id in range(languages.TALLY_MEMBERS):
        counted.note(-1, user_id, "es")
    fresh = itertools.count(10**9)
    figures = {
        "note, member already counted": per_call(lambda: counted.note(-1, 5, "es"), rounds),
        "note, new member, one forgotten": per_call(
            lambda: counted.note(-1, next(fresh), "fa"), rounds),
        "most_common (per warning/alert)": per_call(lambda: counted.most_common(-1), rounds),
    }
    print("1. tally (per member checked)")
    for what, micros in figures.items():
        print(f"   {what:34} {micros:6.2f} µs")


def rendering(rounds: int) -> None:
    channels = tuple(ChannelConfig(n, -1000 - n, f"Channel {n}", f"chan{n}", f"https://t.me/chan{n}")
                     for n in range(3))
    print("2. a raid warning naming 15 of 50 people (render)")
    for language in languages.shipped():
        board = warnings.WarningBoard()
        for n in range(warnings.MAX_USERS):
            warning, _ = board.add(-100, None, "Cats", Person(n, f"Person {n}"), channels,
                                   language=language)
        micros = per_call(lambda w=warning: warnings.render(w), rounds // 100)
        print(f"   {language:6} {micros:8.1f} µs")


def menus() -> None:
    wanted = command_menus.wanted()
    print("3. command menus")
    print(f"   {len(wanted)} menus ({len(command_menus.SCOPES)} scopes x "
          f"{len(languages.shipped())} languages); a restart with nothing changed costs "
          f"{len(wanted)} getMyCommands at P2 and no setMyCommands")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200_000)
    args = parser.parse_args()
    tally(args.rounds)
    rendering(args.rounds)
    menus()


if __name__ == "__main__":
    main()
