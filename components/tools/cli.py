"""The `tunedstack` command: every subcommand reads `stacks/Pulumi.<stack>.yaml`."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from components.model.errors import StackError
from components.model.project import project_root, stacks_dir
from components.model.render import Secrets
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.tools.bench.profiles import (
    HOST_C10K,
    HOST_RUNS,
    HOST_SWEEP,
    SMOKE_C10K,
    SMOKE_RESTARTS,
    SMOKE_SEED,
    SMOKE_SWEEP,
    C10kProfile,
    RestartsProfile,
    SeedProfile,
    SweepProfile,
)
from components.tools.explain import explain_json, explain_text
from components.tools.review import (
    comment_body,
    read_tree,
    render_revision,
    render_stack,
    render_tree,
    unified_diff,
    write_tree,
)

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


def _render(args: argparse.Namespace) -> int:
    root = project_root(args.project_dir)
    secrets = Secrets.generate() if args.generate_secrets else Secrets.placeholders()
    keys = [Path(k).read_text().strip() for k in args.ssh_key]
    rendered, document = render_stack(root, args.stack, secrets, keys)
    written = write_tree(rendered, document, args.out)
    print(f"wrote {len(written)} files to {args.out} (user-data: {len(document.encode())} bytes)")
    return 0


def _diff(args: argparse.Namespace) -> int:
    root = project_root(args.project_dir)
    with tempfile.TemporaryDirectory(prefix="tunedstack-diff-") as tmp:
        old_dir, new_dir = Path(tmp, "old"), Path(tmp, "new")
        old: dict[str, str] = {}
        if args.old_file:
            # The older file, rendered by today's code: only the settings differ.
            alt = Path(tmp, "stacks")
            alt.mkdir()
            (alt / f"Pulumi.{args.stack}.yaml").write_text(args.old_file.read_text())
            rendered, document = render_stack(root, args.stack, Secrets.placeholders(), stacks=alt)
            write_tree(rendered, document, old_dir)
            old = read_tree(old_dir)
        elif render_revision(root, args.base, args.stack, old_dir):
            old = read_tree(old_dir)
        new = read_tree(new_dir) if render_tree(root, args.stack, new_dir, "working tree") else {}
        diff = unified_diff(old, new)
        if args.format == "comment":
            base = args.old_file.name if args.old_file else args.base
            print(comment_body(args.stack, base, diff), end="")
        elif diff:
            print(diff, end="")
        else:
            base = args.old_file.name if args.old_file else args.base
            print(f"no changes to the rendered files of stack {args.stack} against {base}")
    return 0


def _given(**options: Any) -> dict[str, Any]:
    """The command-line options the user set (argparse leaves the others None)."""
    return {name: value for name, value in options.items() if value is not None}


def _stop_vms_on_sigterm() -> None:
    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so the VMs are stopped on the way out, as on Ctrl-C

    signal.signal(signal.SIGTERM, interrupted)


def _rehearse(args: argparse.Namespace) -> int:
    from components.tools.rehearsal.rehearse import rehearse

    _stop_vms_on_sigterm()
    root = project_root(args.project_dir)
    report = rehearse(root, args.stack, keep=args.keep)
    # Each phase's checks were shown as it ended: the end says how each phase went.
    print("\n" + report.summary(), flush=True)
    if args.json is not None:
        args.json.write_text(report.to_json())
    return 0 if report.ok else 1


def _bench(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from components.tools.bench.bench import bench

    host = args.rig == "host"
    seed = SMOKE_SEED if args.smoke else SeedProfile()
    c10k = SMOKE_C10K if args.smoke else (HOST_C10K if host else C10kProfile())
    seed = replace(
        seed,
        **_given(
            testers=args.testers,
            clients_per_tester=args.clients_per_tester,
            spawn_per_tester_per_s=args.spawn_per_tester,
            think_time_s=args.think_time,
            hold_s=args.hold,
        ),
    )
    if args.think_time is not None:  # a think time given is the load, not the capacity's half
        seed = replace(seed, load_fraction=None)
    c10k = replace(
        c10k,
        **_given(
            connections=args.connections, request_interval_s=args.request_interval, hold_s=args.hold
        ),
    )
    if args.request_interval is not None:  # an interval given is the load, not a share
        c10k = replace(c10k, load_fraction=None)

    sweep = SMOKE_SWEEP if args.smoke else (HOST_SWEEP if host else SweepProfile())
    sweep = replace(
        sweep,
        **_given(
            capacity_rps=args.capacity,
            step_s=args.step_seconds,
            objective_ms=args.objective_ms,
        ),
    )

    _stop_vms_on_sigterm()
    run = bench(
        project_root(args.project_dir),
        args.stack,
        seed if "seed" in args.profile else None,
        c10k if "c10k" in args.profile else None,
        args.out,
        sweep=sweep if "sweep" in args.profile else None,
        restarts=(SMOKE_RESTARTS if args.smoke else RestartsProfile())
        if "restarts" in args.profile
        else None,
        rig=args.rig,
        runs=args.runs if args.runs is not None else (HOST_RUNS if host and not args.smoke else 1),
    )
    print(run.summary())
    figure = f" and {run.figure}" if run.figure else ""
    print(f"\nwrote {args.out / 'results.json'}{figure}")
    return 0


PROFILE_GROUPS = {"both": ("seed", "c10k"), "all": ("seed", "c10k", "sweep")}
PROFILES = ("seed", "c10k", "sweep", "restarts")


def profiles_arg(text: str) -> frozenset[str]:
    """`--profile`: a group (both, all), one profile, or a comma-separated list of them."""
    if text in PROFILE_GROUPS:
        return frozenset(PROFILE_GROUPS[text])
    names = frozenset(name.strip() for name in text.split(","))
    unknown = sorted(names - set(PROFILES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected both, all, or a comma-separated list of {', '.join(PROFILES)}"
        )
    if "restarts" in names and len(names) > 1:
        raise argparse.ArgumentTypeError("restarts runs on its own")
    return names


def _reference(args: argparse.Namespace) -> int:
    from components.tools.reference import settings_reference, update_readme

    if args.update:
        changed = update_readme(args.update)
        print(f"{args.update}: {'updated' if changed else 'already current'}")
    else:
        print(settings_reference(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunedstack", description="Size, render and rehearse a tuned Linode box."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    explain = sub.add_parser("explain", help="the plan, the memory budget and key tunables")
    _stack_args(explain)
    explain.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people, json for scripts (default: text)",
    )
    explain.set_defaults(handler=_explain)

    render = sub.add_parser("render", help="write the box's files and its user-data to a folder")
    _stack_args(render)
    render.add_argument("--out", type=Path, required=True, help="folder to write into")
    render.add_argument(
        "--generate-secrets",
        action="store_true",
        help="fresh local passwords instead of placeholders (for a rehearsal)",
    )
    render.add_argument(
        "--ssh-key",
        action="append",
        default=[],
        metavar="FILE",
        help="extra admin public key file for root's authorized_keys (repeatable)",
    )
    render.set_defaults(handler=_render)

    diff = sub.add_parser("diff", help="unified diff of the rendered files between two versions")
    _stack_args(diff)
    base = diff.add_mutually_exclusive_group()
    base.add_argument(
        "--base",
        default="HEAD",
        help="git revision to compare the working tree with (default: HEAD)",
    )
    base.add_argument("--old-file", type=Path, help="an older stack file to compare with")
    diff.add_argument(
        "--format",
        choices=("text", "comment"),
        default="text",
        help="text: a unified diff; comment: Markdown for a pull request comment (default: text)",
    )
    diff.set_defaults(handler=_diff)

    rehearse = sub.add_parser(
        "rehearse", help="boot the stack's cloud-config in a local VM and check the box"
    )
    _stack_args(rehearse)
    rehearse.add_argument(
        "--keep", action="store_true", help="leave the VM running and print how to reach it"
    )
    rehearse.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="also write the report, every check of every phase, as JSON to FILE (default: none)",
    )
    rehearse.set_defaults(handler=_rehearse)

    bench_cmd = sub.add_parser("bench", help="load-test the stock and the tuned box, side by side")
    _stack_args(bench_cmd)
    bench_cmd.add_argument(
        "--rig",
        choices=("vm", "host"),
        default="vm",
        help="where the boxes run: `vm`, the first boot in an emulated guest, or `host`, the "
        "rendered files served by the real daemons on this machine's own cores in private "
        "namespaces and a cgroup (no emulation; kernel settings only those a network namespace "
        "holds; not the restarts profile) (default: vm)",
    )
    bench_cmd.add_argument(
        "--runs",
        type=int,
        help="host rig: rounds of both boxes, stock and tuned interleaved; figures are medians "
        f"with their min-max, a target met only if every run meets it (default: {HOST_RUNS}; "
        "smoke: 1; the seed runs in the first round only)",
    )
    seed, c10k, smoke_seed, smoke_c10k = SeedProfile(), C10kProfile(), SMOKE_SEED, SMOKE_C10K
    bench_cmd.add_argument(
        "--profile",
        type=profiles_arg,
        default="both",
        help="which load to run: the seed's clients, C10K connections, both of them, the "
        "open-loop capacity sweep, or all three (default: both); or `restarts`, what "
        "recycling a gunicorn worker costs (the measurement behind its max_requests); or a "
        "comma-separated list of seed, c10k, sweep (`sweep,c10k`)",
    )
    bench_cmd.add_argument("--smoke", action="store_true", help="small counts, short runs")
    bench_cmd.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        help="folder for the results, figures and raw data (default: bench-results)",
    )
    bench_cmd.add_argument(
        "--testers",
        type=int,
        help=f"seed: load generators (default: {seed.testers}; smoke: {smoke_seed.testers})",
    )
    bench_cmd.add_argument(
        "--clients-per-tester",
        type=int,
        help=f"seed: clients each tester adds (default: {seed.clients_per_tester}; "
        f"smoke: {smoke_seed.clients_per_tester})",
    )
    bench_cmd.add_argument(
        "--spawn-per-tester",
        type=float,
        help=f"seed: clients added per second per tester (default: "
        f"{seed.spawn_per_tester_per_s:g}; smoke: {smoke_seed.spawn_per_tester_per_s:g})",
    )
    bench_cmd.add_argument(
        "--think-time",
        type=float,
        help="seed: seconds between a client's requests (default: set so the peak offers "
        f"{seed.load_fraction:g} x the capacity measured on the stock box)",
    )
    bench_cmd.add_argument(
        "--hold",
        type=float,
        help=f"seconds at full load, both profiles (default: seed {seed.hold_s:g}, C10K "
        f"{c10k.hold_s:g}; smoke: {smoke_seed.hold_s:g}, {smoke_c10k.hold_s:g})",
    )
    bench_cmd.add_argument(
        "--connections",
        type=int,
        help=f"C10K: connections held open (default: {c10k.connections}; "
        f"smoke: {smoke_c10k.connections})",
    )
    bench_cmd.add_argument(
        "--request-interval",
        type=float,
        help=f"C10K: seconds between requests on one connection (default: "
        f"{c10k.request_interval_s:g}; host rig: all connections offer half the measured "
        f"capacity; smoke: {smoke_c10k.request_interval_s:g})",
    )
    sweep = SweepProfile()
    bench_cmd.add_argument(
        "--capacity",
        type=float,
        help="sweep and seed: the capacity (req/s) the sweep's steps are multiples of and the "
        "seed's peak offers a share of, and the tuned box is sized for the response time it "
        "means (default: measured on the stock box with "
        f"{sweep.capacity_clients} clients)",
    )
    bench_cmd.add_argument(
        "--step-seconds",
        type=float,
        help=f"sweep: seconds per offered rate (default: {sweep.step_s:g}, "
        f"the first {sweep.warmup_s:g} not counted)",
    )
    bench_cmd.add_argument(
        "--objective-ms",
        type=float,
        help=f"sweep: latency objective for goodput (default: {sweep.objective_ms:g})",
    )
    bench_cmd.set_defaults(handler=_bench)

    reference = sub.add_parser("reference", help="the stack settings reference (Markdown)")
    reference.add_argument(
        "--update",
        type=Path,
        metavar="README",
        help="rewrite the reference section of this file in place",
    )
    reference.set_defaults(handler=_reference)
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
