"""The `tunedstack` command: every subcommand reads `stacks/Pulumi.<stack>.yaml`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from components.errors import StackError
from components.explain import explain_json, explain_text
from components.project import project_root, stacks_dir
from components.settings import load_stack_file
from components.sizing import size

Handler = Callable[[argparse.Namespace], int]


def _stack_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name: reads stacks/Pulumi.NAME.yaml")
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="folder with Pulumi.yaml (default: found from the current folder)",
    )


def _explain(args: argparse.Namespace) -> int:
    root = project_root(args.project_dir)
    settings = load_stack_file(stacks_dir(root), args.stack)
    sizing = size(settings, source=f"stacks/Pulumi.{args.stack}.yaml")
    render = explain_json if args.format == "json" else explain_text
    print(render(args.stack, settings, sizing))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunedstack", description="Size, render and rehearse a tuned Linode box."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    explain = sub.add_parser("explain", help="the plan, the memory budget and key tunables")
    _stack_args(explain)
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.set_defaults(handler=_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except StackError as e:
        print(f"tunedstack: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
