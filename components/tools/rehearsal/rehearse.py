"""`tunedstack rehearse`: the stack's first-boot document in a local VM, then the rollout's own
script over SSH pinned to the host key, checked from the outside and the inside, through first
boot, a reboot, an instance replacement (the previous document, a changed stack, a flaky blkid
on the volume holding data), a day-2 re-apply, and a restore drill: the backups the boxes took
all along (to a stand-in for Object Storage) restored to a moment on a fresh instance and
volume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

from components.model.backups import BackupRepository
from components.model.delivery import bundle, rollout_script
from components.model.layout import PATHS, volume_label
from components.model.render import Rendered, Secrets, render_files
from components.model.settings import Settings, SysctlOverride, load_stack_file
from components.model.sizing import Sizing, size
from components.model.sizing.sysctl_rules import LISTED_IMAGE
from components.model.userdata import FirstBootKeys, cloud_config
from components.tools.progress import Progress, Timings, progress_for
from components.tools.rehearsal.checks import (
    Check,
    compare,
    expectations,
    files_check,
    files_script,
    host_key_check,
    http_json,
    parse_probe,
    password_login_refused,
    probe_script,
    sysctl_keys_check,
)
from components.tools.rehearsal.cutoff import MID_APPLY, RECOVERED, cut_rollout
from components.tools.rehearsal.haproxy_memory import guest_command, memory_checks, parse
from components.tools.rehearsal.host import (
    cache_root,
    ensure_packages,
    free_port,
    missing_packages,
)
from components.tools.rehearsal.image import BaseImage, build, current_image
from components.tools.rehearsal.leftovers import claim, clear_leftovers
from components.tools.rehearsal.load_check import small_load_check
from components.tools.rehearsal.loadlink import LoadLink
from components.tools.rehearsal.restore_drill import (
    bucket_check,
    mark_point,
    refused_over_live_data,
    restore,
    restored_checks,
    status_check,
)
from components.tools.rehearsal.s3_standin import S3StandIn
from components.tools.rehearsal.seed import vendor_data, write_seed
from components.tools.rehearsal.vm import HOST_KEY_ALIAS, Accel, Vm, kvm_works

BOOT_TIMEOUT_S = 1500
# A first rollout installs packages when the image lacks them, then waits for the app.
ROLLOUT_TIMEOUT_S = 1200
WRITES = 5

# The steps of `rehearse`, in order; `bench` shares the first three.
PREPARE_STEPS = ("host packages", "base image", "accelerator")
REHEARSE_STEPS = (
    *PREPARE_STEPS,
    "first boot",
    "reboot",
    "replacement",
    "day-2",
    "restore drill",
)
# The stand-in for Object Storage: its name, and where the guest reaches the host's loopback
# (QEMU's user network maps its gateway 10.0.2.2 to it).
S3_HOST = "objects.rehearsal.test"
HOST_FROM_GUEST = "10.0.2.2"
# What each step took when measured (2 vCPUs under TCG: the preparation from a fresh clone on
# 2026-12-01; the VM phases from a fresh clone on 2026-12-07, with backups on to the stand-in
# and the first full backup running through first boot); a later run on the same machine says
# what it took.
MEASURED_S = {
    "host packages": 11.0,  # the four and their dependencies, from a Debian mirror close by
    "accelerator": 30.0,  # the KVM probe's timeout, where KVM guests do not boot
    "base image": 123.0,  # debootstrap downloading every package, with a cold cache
    "tcg first boot": 580.0,
    "tcg reboot": 211.0,
    "tcg replacement": 396.0,
    "tcg day-2": 200.0,
    "tcg restore drill": 409.0,
    # the smoke benchmark inside the same `.ci/run`
    "tcg bench stock box": 232.0,
    "tcg bench tuned box": 345.0,
}


def probe_key(image: BaseImage) -> str:
    """What a KVM probe's answer holds for: this image, until the host reboots."""
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return f"{boot_id} {image.folder.name}"


def timings(cache: Path) -> Timings:
    return Timings(cache / "timings.json", MEASURED_S)


@dataclass
class Phase:
    name: str
    seconds: float
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass
class Report:
    stack: str
    accel: Accel
    accel_reason: str
    phases: list[Phase] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.phases) and all(p.ok for p in self.phases)

    def heading(self) -> str:
        return f"rehearsal of stack {self.stack} under {self.accel.upper()} ({self.accel_reason})"

    def text(self) -> str:
        """Every check of every phase, measured beside expected."""
        lines = [self.heading()]
        for phase in self.phases:
            lines += ["", phase_heading(phase), *check_lines(phase.checks)]
        lines.append(f"\nRESULT: {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)

    def summary(self) -> str:
        """The end of a run whose checks were shown as each phase measured them: each phase's
        count, the failed checks again, the result."""
        lines = [self.heading()]
        for phase in self.phases:
            lines.append(phase_heading(phase))
            failed = [c for c in phase.checks if not c.ok]
            if failed:
                lines += check_lines(failed)
        lines.append(f"RESULT: {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Report:
        data = json.loads(text)
        phases = [
            Phase(p["name"], p["seconds"], [Check(**c) for c in p["checks"]])
            for p in data["phases"]
        ]
        return cls(data["stack"], data["accel"], data["accel_reason"], phases)


def phase_heading(phase: Phase) -> str:
    if not phase.checks:
        return f"== {phase.name}: ready in {phase.seconds:.0f}s"
    passed = sum(c.ok for c in phase.checks)
    return f"== {phase.name}: {passed}/{len(phase.checks)} passed in {phase.seconds:.0f}s"


def check_lines(checks: list[Check]) -> list[str]:
    """Measured and expected side by side, aligned: a reader learns what the box was sized to."""
    if not checks:
        return []
    width = max(len(c.name) for c in checks)
    shown = {id(c): " ".join(c.measured.split()) for c in checks}
    measured = min(max([len("measured"), *(len(m) for m in shown.values())]), 40)
    lines = [f"        {'check':<{width}}  {'measured':<{measured}}  expected"]
    for c in checks:
        mark = "PASS" if c.ok else "FAIL"
        lines.append(f"  {mark}  {c.name:<{width}}  {shown[id(c)]:<{measured}}  {c.expected}")
    return lines


def replacement_settings(settings: Settings) -> Settings:
    """The stack change made before the instance is replaced: the replacement must boot the
    previous document and still end with the new files."""
    fin_timeout = SysctlOverride(value="20")
    return settings.model_copy(
        update={"sysctl": {**settings.sysctl, "net.ipv4.tcp_fin_timeout": fin_timeout}}
    )


# Installed on a replaced box before its first rollout: blkid fails once, claiming it found
# nothing on the volume that holds the data (a transient read error). Nothing may be formatted.
FLAKY_BLKID = """cat > /usr/local/sbin/blkid <<'SH'
#!/bin/sh
rm -f /usr/local/sbin/blkid
echo "blkid made to fail once: $*" >&2
exit 2
SH
chmod 0755 /usr/local/sbin/blkid"""


@dataclass(frozen=True)
class BadChange:
    """A Redis config pushed on day 2 that must fail the rollout and leave the box serving."""

    name: str
    rewrite: Callable[[str], str]  # the rendered redis.conf -> the file pushed
    says: str  # what the rollout's output must show: the daemon's or the check's words
    outcome: str  # the apply's last word on it


BAD_CHANGES = (
    # Redis refuses to parse it: the check before any restart catches it.
    BadChange(
        "a redis.conf Redis refuses to read",
        lambda conf: conf + "maxmemory-policy sometimes\n",
        "FATAL CONFIG FILE ERROR",
        "refused before anything was installed",
    ),
    # Redis reads it but cannot start on it (the check runs on its own socket): the restart
    # fails and is rolled back.
    BadChange(
        "a redis.conf Redis cannot start on",
        lambda conf: conf + "unixsocket /run/redis-missing/redis.sock\n",
        "Failed opening Unix socket",
        "rolled back: the box serves the files it had before this change",
    ),
)


def hits_headers(secrets: Secrets) -> dict[str, str]:
    """What lets a request write through the sample app's /hits."""
    return {"X-Tunedstack-Token": secrets.hits_token}


def with_content(rendered: Rendered, path: str, rewrite: Callable[[str], str]) -> Rendered:
    files = tuple(
        replace(f, content=rewrite(f.content)) if f.path == path else f for f in rendered.files
    )
    return replace(rendered, files=files)


def power_cut_settings(settings: Settings) -> Settings:
    """The change rolled out when the power goes: files whose actions restart Redis and reload
    HAProxy, so the cut lands among them."""
    services = settings.services
    slower = services.haproxy.model_copy(
        update={"queue_timeout_seconds": services.haproxy.queue_timeout_seconds + 5}
    )
    policy = "allkeys-lfu" if settings.workload.redis_policy != "allkeys-lfu" else "allkeys-lru"
    return settings.model_copy(
        update={
            "workload": settings.workload.model_copy(update={"redis_policy": policy}),
            "services": services.model_copy(update={"haproxy": slower}),
        }
    )


def day2_settings(settings: Settings) -> Settings:
    """The tunables the day-2 phase changes: a Redis policy (restart) and a sysctl (reload)."""
    policy = "allkeys-lfu" if settings.workload.redis_policy != "allkeys-lfu" else "allkeys-lru"
    return settings.model_copy(
        update={
            "workload": settings.workload.model_copy(update={"redis_policy": policy}),
            "sysctl": {**settings.sysctl, "vm.swappiness": SysctlOverride(value="5")},
        }
    )


@dataclass
class Rehearsal:
    root: Path
    stack: str
    progress: Progress | None = None  # plain lines on standard output unless given
    keep: bool = False
    cache: Path = field(default_factory=cache_root)
    override: Settings | None = None  # the stack's settings, changed (the benchmark's modes)
    # Backups on, to a stand-in bucket the run serves, and the restore drill at the end.
    backups: bool = False

    def __post_init__(self) -> None:
        self.settings = self.override or load_stack_file(self.root / "stacks", self.stack)
        self.s3: S3StandIn | None = None
        self.s3_port = free_port()
        if self.backups:
            backups = self.settings.backups.model_copy(
                update={"enabled": True, "endpoint": f"{S3_HOST}:{self.s3_port}"}
            )
            self.settings = self.settings.model_copy(update={"backups": backups})
        self.sizing = size(self.settings, f"stacks/Pulumi.{self.stack}.yaml")
        self.vms: list[Vm] = []
        self.shown = self.progress or progress_for(REHEARSE_STEPS, timings(self.cache))

    def log(self, text: str) -> None:
        self.shown.note(text)

    @cached_property
    def secrets(self) -> Secrets:
        """Local passwords, and the rehearsal's key where Pulumi's deploy key would be (made on
        first use: ssh-keygen is among the host packages `prepare` installs)."""
        deploy_public = self.ssh_key().with_suffix(".pub").read_text().strip()
        return replace(Secrets.generate(backups=self.backups), deploy_public_key=deploy_public)

    @property
    def bucket(self) -> str:
        return f"tunedstack-{self.stack}-rehearsal"

    # ------------------------------------------------------------------ pieces
    def render(self, settings: Settings, sizing: Sizing) -> Rendered:
        repository = (
            BackupRepository(self.bucket, f"{S3_HOST}:{self.s3_port}") if self.backups else None
        )
        return render_files(self.stack, settings, sizing, self.secrets, self.root, repository)

    def keys(self) -> FirstBootKeys:
        """As Pulumi keeps them: a host key for the stack, and the deploy key's public half."""
        host = self.cache / "ssh" / f"host-{self.stack}"
        self._keygen(host, f"tunedstack-{self.stack}-host")
        return FirstBootKeys(
            host.read_text(),
            host.with_suffix(".pub").read_text().strip(),
            self.secrets.deploy_public_key,
        )

    def document(self) -> str:
        return cloud_config(self.keys(), self.stack)

    def known_hosts(self) -> Path:
        path = self.cache / "ssh" / f"known_hosts-{self.stack}"
        path.write_text(f"{HOST_KEY_ALIAS} {self.keys().host_public_key}\n")
        return path

    @staticmethod
    def _keygen(key: Path, comment: str) -> None:
        key.parent.mkdir(parents=True, exist_ok=True)
        if not key.is_file():
            key.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    comment,
                    "-f",
                    str(key),
                ],
                check=True,
            )

    def ssh_key(self) -> Path:
        """The key the rehearsal's rollout logs in with (Pulumi's deploy key stands here)."""
        key = self.cache / "ssh" / "id_ed25519"
        self._keygen(key, "tunedstack-rehearsal")
        return key

    def start(
        self,
        image: BaseImage,
        accel: Accel,
        run: Path,
        n: int,
        document: str,
        data_disk: Path,
        load_link: LoadLink | None = None,
    ) -> Vm:
        """A new instance: a fresh root disk over the base image, the same data volume, the
        document as its user data; returns once cloud-init is done."""
        root_disk = run / f"root-{n}.qcow2"
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                str(image.disk),
                "-F",
                "qcow2",
                str(root_disk),
            ],
            check=True,
        )
        label = self.settings.instance_label(self.stack)
        vendor = (
            vendor_data({S3_HOST: HOST_FROM_GUEST}, self.s3.ca.read_text())
            if self.s3 is not None
            else None
        )
        seed = write_seed(
            run / f"seed-{n}", document, f"tunedstack-{self.stack}-{n}", label, load_link, vendor
        )
        vm = Vm(
            f"instance-{n}",
            image,
            run,
            root_disk,
            data_disk,
            seed,
            memory_mb=self.sizing.plan.memory_mb,
            vcpus=min(self.sizing.plan.vcpus, os.cpu_count() or 1),
            accel=accel,
            volume_label=volume_label(self.stack),
            ssh_key=self.ssh_key(),
            known_hosts=self.known_hosts(),
            load_link=load_link,
        )
        self.vms.append(vm)
        vm.start()
        self.log(f"booting instance {n} ({accel}); serial log {vm.serial_log}")
        status = vm.wait_first_boot(BOOT_TIMEOUT_S)
        if status not in (0, 2):
            detail = vm.ssh(
                "cloud-init status --long; tail -n 40 /var/log/cloud-init-output.log", check=False
            ).stdout
            raise RuntimeError(f"first boot failed (cloud-init exit {status}):\n{detail}")
        return vm

    def roll_out(self, vm: Vm, rendered: Rendered, check: bool = True) -> str:
        """What the Pulumi rollout runs, byte for byte: its script, the bundle on stdin."""
        self.log(f"rollout to {vm.name}: {len(rendered.files)} files")
        result = self.rollout_run(vm, rendered, check)
        return result.stdout + result.stderr

    def rollout_run(
        self, vm: Vm, rendered: Rendered, check: bool
    ) -> subprocess.CompletedProcess[str]:
        return vm.ssh(
            rollout_script(rendered.content_hash, vm.name),
            stdin=bundle(rendered),
            timeout=ROLLOUT_TIMEOUT_S,
            check=check,
        )

    @staticmethod
    def rollout_command(vm: Vm, rendered: Rendered) -> list[str]:
        """The rollout's SSH command line, for a run cut off by hand (its bundle on stdin)."""
        return [*vm.ssh_base(), rollout_script(rendered.content_hash, vm.name)]

    def boot(
        self,
        image: BaseImage,
        accel: Accel,
        run: Path,
        n: int,
        document: str,
        data_disk: Path,
        rendered: Rendered,
        load_link: LoadLink | None = None,
    ) -> Vm:
        """A new instance made ready: its first boot, then the rollout."""
        vm = self.start(image, accel, run, n, document, data_disk, load_link)
        self.roll_out(vm, rendered)
        return vm

    def box_checks(
        self, vm: Vm, sizing: Sizing, rendered: Rendered
    ) -> tuple[list[Check], dict[str, str]]:
        measured = parse_probe(vm.ssh(probe_script(sizing, self.stack), timeout=300).stdout)
        checks = compare(expectations(sizing), measured)
        checks.append(files_check(rendered, vm.ssh(files_script(rendered)).stdout))
        host_key = vm.ssh("cat /etc/ssh/ssh_host_ed25519_key.pub").stdout
        checks.append(host_key_check(host_key, self.keys().host_public_key))
        if self.settings.image == LISTED_IMAGE:
            checks.append(sysctl_keys_check(vm.ssh("sysctl -aN 2> /dev/null").stdout))
        base = f"http://127.0.0.1:{vm.http_port}"
        status, health = http_json(base + self.settings.app.health_path)
        checks.append(
            Check(
                "http health through haproxy",
                status == 200 and health == {"postgresql": "ok", "redis": "ok"},
                f"{status} {health}",
                "200 postgresql ok, redis ok",
            )
        )
        checks.append(password_login_refused(vm.ssh_base()))
        drift = vm.ssh(PATHS.drift_script, check=False)
        checks.append(
            Check(
                "drift check: every managed file as the last apply left it",
                drift.returncode == 0,
                " ".join(drift.stdout.split("\n", 1)[0].split()[-2:]) or drift.stderr[-60:],
                "0 drifted",
            )
        )
        return checks, measured

    def haproxy_memory(self, vm: Vm) -> list[Check]:
        """HAProxy's real cost per idle connection and per request, measured on the box."""
        started = time.monotonic()
        measured = parse(vm.ssh(guest_command(), timeout=300).stdout)
        self.log(
            f"haproxy memory: {measured.summary()}; measured in {time.monotonic() - started:.0f} s"
        )
        return memory_checks(measured)

    def hit(self, vm: Vm) -> dict[str, object]:
        status, body = http_json(
            f"http://127.0.0.1:{vm.http_port}/hits", headers=hits_headers(self.secrets)
        )
        if status != 200:
            raise RuntimeError(f"/hits answered {status}: {body}")
        return body

    def data_check(self, vm: Vm, before: dict[str, object]) -> Check:
        """PostgreSQL's row ids continue past the last one written (a fresh database would start
        at 1 again) and Redis's counter is exactly one more."""
        after = self.hit(vm)
        last_row, last_counter = int(str(before["row"])), int(str(before["counter"]))
        row, counter = int(str(after["row"])), int(str(after["counter"]))
        return Check(
            "data written before is still there",
            row > last_row and counter == last_counter + 1,
            f"row {row}, counter {counter}",
            f"row > {last_row}, counter {last_counter + 1}",
        )

    # ------------------------------------------------------------------ the run
    def prepare(self) -> tuple[BaseImage, Accel, str, Path]:
        """Host packages, the cached image, a run folder, and the accelerator that works."""
        missing = missing_packages()
        apt_log = self.cache / "apt.log"
        if missing:
            with self.shown.step(
                "host packages", f"installing {' '.join(missing)}", "host packages", apt_log
            ):
                ensure_packages(apt_log)
        else:
            with self.shown.step("host packages", "all installed"):
                pass
        cached = current_image(self.cache)
        if cached.ready:
            with self.shown.step("base image", f"cached in {cached.folder}"):
                image = build(self.cache)
        else:
            log = cached.folder / "build.log"
            with self.shown.step("base image", "building Debian 12", "base image", log):
                image = build(self.cache, log)
        run = self.run_folder()
        probed = self.probed_accelerator(image)
        if probed is not None:
            accel, reason = probed
            with self.shown.step("accelerator", "probed since the host booted") as step:
                step.summary = f"{accel} ({reason})"
            return image, accel, reason, run
        with self.shown.step("accelerator", "can KVM boot a guest here?", "accelerator") as step:
            works, reason = kvm_works(image, run)
            accel = "kvm" if works else "tcg"
            step.summary = f"{accel} ({reason})"
        self.remember_accelerator(image, accel, reason)
        return image, accel, reason, run

    def remember_accelerator(self, image: BaseImage, accel: Accel, reason: str) -> None:
        record = {"probe": probe_key(image), "accel": accel, "reason": reason}
        self.accelerator_record().write_text(json.dumps(record))

    def accelerator_record(self) -> Path:
        return self.cache / "accelerator.json"

    def probed_accelerator(self, image: BaseImage) -> tuple[Accel, str] | None:
        """The probe's answer for this image since the host booted (the probe costs up to
        30 s, and a rehearsal and a benchmark in a row would pay it twice)."""
        try:
            saved = json.loads(self.accelerator_record().read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("probe") != probe_key(image):
            return None
        accel = saved.get("accel")
        if accel not in ("kvm", "tcg"):
            return None
        return accel, str(saved.get("reason", ""))

    def run_folder(self) -> Path:
        """A new run's folder, marked as this process's; first, what killed runs left."""
        for line in clear_leftovers(self.cache):
            self.log(line)
        folder = Path(tempfile.mkdtemp(prefix=f"{self.stack}-", dir=self.cache.as_posix()))
        claim(folder)
        return folder

    def new_volume(self, run: Path, name: str = "volume.qcow2") -> Path:
        """A blank disk standing in for a new Linode volume of the stack's size."""
        data_disk = run / name
        size_arg = f"{self.settings.volume_size_gb}G"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(data_disk), size_arg], check=True
        )
        return data_disk

    def run(self) -> Report:
        started = time.monotonic()
        image, accel, reason, run = self.prepare()
        report = Report(self.stack, accel, reason)
        report.phases.append(Phase("base image", time.monotonic() - started))
        data_disk = self.new_volume(run)
        # Sent once, as Pulumi does: the replacement below boots this same document.
        document = self.document()
        rendered = self.render(self.settings, self.sizing)
        try:
            if self.backups:
                self.s3 = S3StandIn(run / "s3", S3_HOST, self.bucket, port=self.s3_port)
                self.s3.start()
            with self.phase(report, "first boot", "boot, rollout, box checks"):
                t = time.monotonic()
                vm = self.boot(image, report.accel, run, 1, document, data_disk, rendered)
                checks, _ = self.box_checks(vm, self.sizing, rendered)
                checks += self.haproxy_memory(vm)
                checks.append(small_load_check(vm))
                report.phases.append(Phase("first boot", time.monotonic() - t, checks))
                written: dict[str, object] = {}
                for _ in range(WRITES):
                    written = self.hit(vm)
                self.log(f"wrote {WRITES} rows and counts through the app: {written}")

            with self.phase(report, "reboot", "power cut mid-apply, box checks, the data"):
                t = time.monotonic()
                checks = self.power_cut_mid_apply(vm, written)
                written = self.hit(vm)
                report.phases.append(
                    Phase("after a power cut mid-apply", time.monotonic() - t, checks)
                )

            with self.phase(
                report, "replacement", "a new instance on the volume, the previous document"
            ):
                t = time.monotonic()
                settings = replacement_settings(self.settings)
                sizing = size(settings)
                rendered = self.render(settings, sizing)
                vm.stop()
                vm = self.start(image, report.accel, run, 2, document, data_disk)
                refused = self.flaky_blkid_is_refused(vm, rendered)
                self.roll_out(vm, rendered)
                checks, _ = self.box_checks(vm, sizing, rendered)
                checks += [refused, self.data_check(vm, written)]
                written = self.hit(vm)
                report.phases.append(
                    Phase(
                        "replaced instance, previous document, changed stack",
                        time.monotonic() - t,
                        checks,
                    )
                )

            with self.phase(report, "day-2", "bad changes rolled back, then a re-apply"):
                t = time.monotonic()
                report.phases.append(self.day2(vm, settings, sizing, rendered, written))
                report.phases[-1].seconds = time.monotonic() - t

            if self.s3 is not None:
                with self.phase(
                    report,
                    "restore drill",
                    "backups restored to a moment, fresh instance and volume",
                ):
                    t = time.monotonic()
                    vm, checks = self.restore_drill(
                        vm, image, report.accel, run, document, rendered
                    )
                    report.phases.append(
                        Phase(
                            "restore drill: a fresh instance and volume, to a moment",
                            time.monotonic() - t,
                            checks,
                        )
                    )
            if self.keep:
                self.log("VM kept running:\n" + vm.how_to_reach())
        finally:
            if self.s3 is not None and not self.keep:
                self.s3.stop()
            if not self.keep:
                for machine in self.vms:
                    machine.stop()
                shutil.rmtree(run, ignore_errors=True)
        return report

    def healthy(self, vm: Vm) -> bool:
        status, _ = http_json(f"http://127.0.0.1:{vm.http_port}{self.settings.app.health_path}")
        return status == 200

    def restore_drill(
        self,
        vm: Vm,
        image: BaseImage,
        accel: Accel,
        run: Path,
        document: str,
        rendered: Rendered,
    ) -> tuple[Vm, list[Check]]:
        """Data and backups on `vm`, then a new instance on a blank volume restored to T."""
        assert self.s3 is not None
        point = mark_point(vm, lambda: self.hit(vm))
        self.log(f"restore drill: T = {point.target}, {point.rows_before} rows before it")
        checks = [
            status_check(vm),
            refused_over_live_data(vm, point, lambda: self.healthy(vm)),
        ]
        vm.stop()
        fresh = self.new_volume(run, "volume-fresh.qcow2")
        new = self.boot(image, accel, run, 3, document, fresh, rendered)
        outcome = restore(new, point)
        checks += restored_checks(new, point, outcome, lambda: self.healthy(new))
        checks.append(bucket_check(self.s3.objects()))
        return new, checks

    @contextmanager
    def phase(self, report: Report, step: str, detail: str) -> Iterator[None]:
        """One of the rehearsal's phases as a step: its checks are shown as soon as they are
        measured, not with the report at the end."""
        with self.shown.step(step, detail, f"{report.accel} {step}") as outcome:
            before = len(report.phases)
            yield
            for phase in report.phases[before:]:
                passed = sum(c.ok for c in phase.checks)
                outcome.summary = f"{passed}/{len(phase.checks)} checks passed"
                self.shown.block(check_lines(phase.checks))

    def flaky_blkid_is_refused(self, vm: Vm, rendered: Rendered) -> Check:
        """The first rollout to the replacement meets a blkid that fails once on the volume
        holding the data: it must stop, format nothing, and the next rollout proceeds."""
        vm.ssh(FLAKY_BLKID)
        output = self.roll_out(vm, rendered, check=False)
        refusal = next((line for line in output.splitlines() if "refusing to format" in line), "")
        formatted = "creating its ext4 filesystem" in output
        return Check(
            "flaky blkid on the data volume: rollout stops, formats nothing",
            bool(refusal) and not formatted,
            refusal.split(": ", 1)[-1] if refusal else output.strip()[-80:],
            "refusing to format or mount the volume",
        )

    def day2(
        self,
        vm: Vm,
        settings: Settings,
        sizing: Sizing,
        rendered: Rendered,
        written: dict[str, object],
    ) -> Phase:
        """Push changes a daemon rejects (each must fail and leave the box as it was), then
        re-render with changed tunables and push them the way the rollout does."""
        changed = day2_settings(settings)
        new_sizing = size(changed)
        new_rendered = self.render(changed, new_sizing)
        _, before = self.box_checks(vm, sizing, rendered)
        failed = [self.bad_change_check(vm, bad, rendered, new_rendered) for bad in BAD_CHANGES]
        dropped = self.ssh_killed_mid_apply(vm, new_rendered)
        checks, after = self.box_checks(vm, new_sizing, new_rendered)
        checks.append(
            Check(
                "no reboot",
                before["boot_id"] == after["boot_id"],
                after["boot_id"],
                before["boot_id"],
            )
        )
        checks.append(self.data_check(vm, written))
        return Phase(
            "day-2: changes Redis rejects rolled back, then a re-apply "
            "(redis policy, vm.swappiness) whose SSH client is killed mid-apply",
            0.0,
            [*failed, dropped, *checks],
        )

    def ssh_killed_mid_apply(self, vm: Vm, rendered: Rendered) -> Check:
        """The rollout's SSH client killed once the apply has replaced a file (a cancelled
        `pulumi up`): the apply, detached, finishes the change; the next rollout, the same
        bundle, finds nothing left to do."""
        self.log(f"rollout to {vm.name}: its SSH client killed mid-apply")
        cut = cut_rollout(
            self.rollout_command(vm, rendered),
            bundle(rendered),
            lambda: None,
            ROLLOUT_TIMEOUT_S,
        )
        result = self.rollout_run(vm, rendered, check=False)
        output = result.stdout + result.stderr
        redone = [line for line in output.splitlines() if line.startswith(MID_APPLY)]
        return Check(
            "SSH client killed mid-apply: the apply finishes on its own",
            cut.cut and result.returncode == 0 and not redone and RECOVERED not in output,
            f"cut {'mid-apply' if cut.cut else 'never'}; next rollout rc {result.returncode}, "
            f"{len(redone)} files installed again",
            "cut mid-apply; next rollout rc 0, 0 files installed again",
        )

    def power_cut_mid_apply(self, vm: Vm, written: dict[str, object]) -> list[Check]:
        """A change is rolled out and the box loses power once the apply has replaced a file;
        powered on again, the next rollout (the same bundle) finds the journal, puts the
        previous files back and applies the change whole."""
        changed = power_cut_settings(self.settings)
        sizing = size(changed)
        rendered = self.render(changed, sizing)
        self.log(f"rollout to {vm.name}: power cut mid-apply")
        cut = cut_rollout(
            self.rollout_command(vm, rendered),
            bundle(rendered),
            vm.power_cut,
            ROLLOUT_TIMEOUT_S,
        )
        if not cut.cut:
            vm.power_cut()
        vm.power_on(BOOT_TIMEOUT_S)
        result = self.rollout_run(vm, rendered, check=False)
        output = result.stdout + result.stderr
        said = next((line for line in output.splitlines() if RECOVERED in line), "")
        recovered = Check(
            "power cut mid-apply: the next rollout puts the cut-off change back, then applies it",
            cut.cut and result.returncode == 0 and bool(said),
            f"cut {'mid-apply' if cut.cut else 'never'}; rc {result.returncode}; "
            f"{said.split(': ', 1)[-1] or output.strip()[-60:]}",
            "cut mid-apply; rc 0; the journal found",
        )
        checks, _ = self.box_checks(vm, sizing, rendered)
        return [recovered, *checks, self.data_check(vm, written)]

    def bad_change_check(
        self, vm: Vm, bad: BadChange, current: Rendered, changed: Rendered
    ) -> Check:
        """The rollout fails with the daemon's words, and the box still serves the current
        render: every managed file as it was, the app healthy through HAProxy."""
        pushed = with_content(changed, PATHS.redis_conf, bad.rewrite)
        self.log(f"rollout to {vm.name}: {bad.name} (must fail)")
        result = self.rollout_run(vm, pushed, check=False)
        output = result.stdout + result.stderr
        kept = files_check(current, vm.ssh(files_script(current)).stdout)
        status, health = http_json(
            f"http://127.0.0.1:{vm.http_port}{self.settings.app.health_path}"
        )
        serving = status == 200 and health == {"postgresql": "ok", "redis": "ok"}
        passed = (
            result.returncode != 0
            and bad.says in output
            and bad.outcome in output
            and kept.ok
            and serving
        )
        said = next((line for line in output.splitlines() if bad.says in line), "")
        return Check(
            f"{bad.name}: rollout fails, box keeps serving",
            passed,
            f"rc {result.returncode}; {said.strip()[:60] or output.strip()[-60:]}; "
            f"{kept.measured}; health {status}",
            f"rc != 0; {bad.says}; {kept.expected}; health 200",
        )


def rehearse(
    root: Path, stack: str, keep: bool = False, progress: Progress | None = None
) -> Report:
    return Rehearsal(root, stack, progress=progress, keep=keep, backups=True).run()
