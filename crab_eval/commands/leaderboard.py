"""``crab-eval leaderboard build``: the static leaderboard page plus Markdown and CSV tables."""

from __future__ import annotations

import argparse
from typing import Any

from crab_eval.commands.common import subparser
from crab_eval.leaderboard.render import TITLE, build_site


def add_parser(sub: Any) -> None:
    parser = subparser(
        sub,
        "leaderboard",
        "build the leaderboard site from scored entries and the published numbers",
        "crab-eval leaderboard build --entries entries --out site",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = subparser(
        actions,
        "build",
        "write SITE_DIR/index.html (one file, no server, no network), leaderboard.md and one CSV per table",
        "crab-eval leaderboard build --entries entries --out site",
    )
    build.add_argument("--entries", default=None, help="folder searched for entry files (crab-eval submit score)")
    build.add_argument("--out", required=True, help="site folder to write")
    group = build.add_mutually_exclusive_group()
    group.add_argument("--published", default=None, help="published-numbers file (default: the bundled one)")
    group.add_argument("--no-published", action="store_true", help="leave the published numbers out")
    build.add_argument("--title", default=TITLE, help="page title")
    build.set_defaults(run=run_build)


def run_build(args: argparse.Namespace) -> int:
    published: Any = False if args.no_published else (args.published or True)
    written = build_site(args.entries, args.out, published=published, title=args.title)
    print(f"wrote {written['html']} and {len(written) - 1} table files to {args.out}")
    return 0
