"""Malformed stack files through `explain` and `render`, as a user or an attacker would write
them: every one ends in a clear error (exit 2, the key named, bounded output) or a valid box,
never a traceback or a hang. The corpus is generated from the settings model and the shipped
stack file, so a new setting is covered by the same cases."""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from components.model.errors import SHOWN_CHARS
from components.model.project import PACKAGE_ROOT
from components.model.settings import Settings
from components.tools.cli import main

SHIPPED = (PACKAGE_ROOT / "stacks/Pulumi.staging.yaml").read_bytes()
# A malformed file is answered at once; this bound only turns a hang into a failure.
HANG_SECONDS = 5
MAX_OUTPUT = 4096


def _base() -> dict[str, object]:
    doc = yaml.safe_load(SHIPPED)
    assert isinstance(doc, dict)
    return doc


def _with(key: str, value: object) -> bytes:
    doc = _base()
    config = doc["config"]
    assert isinstance(config, dict)
    config[f"tunedstack:{key}"] = value
    return yaml.safe_dump(doc).encode()


ODD_VALUES: list[object] = [
    None,
    True,
    0,
    -1,
    10**100,
    1.5,
    float("inf"),
    float("nan"),
    "",
    "banana",
    "x" * 100_000,
    "line one\nline two",
    "tab\there",
    "esc\x1b[31mred",
    "nul\x00",
    "$(touch /tmp/pwned)`id`';\"",
    [],
    [None],
    [[["deep"]]],
    {},
    {"unknownKey": 1},
    {"nested": {"again": [1, 2, {"x": None}]}},
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    "-----END OPENSSH PRIVATE KEY-----",
]


def _generated() -> Iterator[tuple[str, bytes]]:
    # The whole document, and `config`, as every other kind of YAML value.
    for kind, value in [("list", [1, 2]), ("string", "config"), ("int", 7), ("float", 1.5)]:
        yield f"document-is-{kind}", yaml.safe_dump(value).encode()
        yield f"config-is-{kind}", yaml.safe_dump({"config": value}).encode()
    yield "empty", b""
    yield "only-a-comment", b"# nothing\n"
    # Keys that are not strings.
    yield "int-key", b"config:\n  1: x\n"
    yield "null-key", b"config:\n  ~: x\n"
    yield "bool-key", b"config:\n  true: x\n"
    yield "list-key", b"config:\n  ? [a, b]\n  : x\n"
    yield "nested-int-key", b"config:\n  tunedstack:workload:\n    7: 1\n"
    # Bytes that are not UTF-8 text, anywhere.
    for at in (0, 10, len(SHIPPED) // 2, len(SHIPPED) - 1):
        yield f"non-utf8-at-{at}", SHIPPED[:at] + b"\xff\xfe" + SHIPPED[at:]
    yield "utf16", SHIPPED.decode().encode("utf-16")
    # Nesting past any setting, flow and block.
    yield "deep-flow-list", b"config:\n  tunedstack:tags: " + b"[" * 5000 + b"]" * 5000 + b"\n"
    yield "deep-flow-map", b"config:\n  tunedstack:app: " + b"{a: " * 3000 + b"1" + b"}" * 3000
    yield "deep-block", b"".join(b"  " * i + b"k%d:\n" % i for i in range(200)) + b"  " * 200 + b"1"
    # Alias bombs: 487 bytes that expand into billions of strings.
    bomb = ["config:", '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    bomb += [f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    yield "alias-bomb", ("\n".join([*bomb, "  tunedstack:tags: *a8"]) + "\n").encode()
    yield "alias-bomb-key", ("\n".join([*bomb, "  tunedstack:workload: *a8"]) + "\n").encode()
    yield "one-alias", b"x: &p g6-standard-2\nconfig:\n  tunedstack:plan: *p\n"
    yield "merge-key", b"x: &m {plan: a}\nconfig:\n  <<: *m\n"
    # A key written twice: YAML keeps the last silently.
    yield "duplicate-top", SHIPPED + b"config:\n  tunedstack:plan: g6-nanode-1\n"
    yield "duplicate-setting", SHIPPED + b"  tunedstack:plan: g6-nanode-1\n"
    yield "duplicate-flow", b"config: {tunedstack:plan: a, tunedstack:plan: b}\n"
    yield "huge-file", b"# " + b"x" * 2_000_000 + b"\n" + SHIPPED
    # The shipped file cut short anywhere, and with bytes flipped (seeded: the same every run).
    for at in range(0, len(SHIPPED), max(1, len(SHIPPED) // 25)):
        yield f"truncated-at-{at}", SHIPPED[:at]
    rng = random.Random(12)
    for n in range(40):
        flipped = bytearray(SHIPPED)
        for _ in range(3):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        yield f"flipped-{n}", bytes(flipped)
    # Every top-level setting, and every sysctl override, as every odd value.
    for name, field in Settings.model_fields.items():
        key = field.alias or name
        for i, value in enumerate(ODD_VALUES):
            yield f"{key}-odd-{i}", _with(key, value)
    for i, value in enumerate(ODD_VALUES):
        yield f"sysctl-value-odd-{i}", _with("sysctl", {"net.core.somaxconn": value})
        yield (
            f"sysctl-reason-odd-{i}",
            _with("sysctl", {"vm.swappiness": {"value": 5, "reason": value}}),
        )
        yield f"app-git-odd-{i}", _with("app", {"git": {"url": value}})


CORPUS = list(_generated())


@contextlib.contextmanager
def _bounded(seconds: int) -> Iterator[None]:
    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    shutil.copy(PACKAGE_ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    (root / "cloud-init").symlink_to(PACKAGE_ROOT / "cloud-init")
    (root / "stacks").mkdir()
    return root


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CORPUS) > 300
    assert len({name for name, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("name", "text"), CORPUS, ids=[name for name, _ in CORPUS])
@pytest.mark.parametrize("command", ["explain", "render"])
def test_a_malformed_stack_file_ends_in_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str], name: str, text: bytes, command: str
) -> None:
    (project / "stacks/Pulumi.bad.yaml").write_bytes(text)
    argv = [command, "--stack", "bad", "--project-dir", str(project)]
    if command == "render":
        argv += ["--out", str(project / "out")]
    with _bounded(HANG_SECONDS):
        code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2), err
    if code == 2:
        assert err.startswith("tunedstack: stacks/Pulumi.bad.yaml: "), err[:200]
        assert len(err) < MAX_OUTPUT, err[:200]
        assert "Traceback" not in err
        assert "PRIVATE KEY-----\nb3Bl" not in err and "b3BlbnNzaC1rZXkt" not in err
        for line in err.splitlines():
            if " = " in line:  # a problem line: the value shown is cut
                shown = line.split(" = ", 1)[1].rsplit(": ", 1)[0]
                assert len(shown) <= SHOWN_CHARS + 80, line
    else:
        assert "\x1b" not in out and "\x00" not in out
