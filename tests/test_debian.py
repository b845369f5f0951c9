"""The packaging: the certbot drop-ins and the systemd units as they are in packaging/, then the
Debian package. packaging/build-deb.sh builds it with dpkg-buildpackage, `dpkg-deb -c` shows
every file in its place, apt installs it, and the test suite runs against the installed package
with Debian's /usr/bin/python3, Debian's libraries and Debian's certbot 2.1 (issue 7).

The slow tests install what they need with apt (idempotent: nothing when all is there) and
remove the package again unless it was installed before. The lab's servers (Knot, Unbound,
Pebble) and the oracle tools come from tests/run.sh.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
DROPINS = {kind: PACKAGING / "certbot" / kind / "00-dane-hook" for kind in ("pre", "deploy")}
UNITS = [PACKAGING / "systemd" / f"dane-hook-release.{kind}" for kind in ("service", "timer")]

# Everything the build and the Debian test run need from Debian 12: the Build-Depends and
# Depends of packaging/debian/control (a test checks), pytest and hypothesis for the suite,
# and Debian's certbot as the ACME client.
DEBIAN_PACKAGES = (
    "debhelper",
    "dh-python",
    "pybuild-plugin-pyproject",
    "python3-all",
    "python3-setuptools",
    "python3-cryptography",
    "python3-dnspython",
    "python3-acme",
    "python3-josepy",
    "python3-pytest",
    "python3-hypothesis",
    "python3-jsonschema",  # tests/schemas.py: the suite reads every JSON through its schema
    "dpkg-dev",
    "certbot",
)
# The versions reported (and the floors of the package's Depends).
REPORTED = (
    "python3",
    "python3-cryptography",
    "python3-dnspython",
    "python3-acme",
    "python3-josepy",
    "certbot",
    "python3-pytest",
    "python3-hypothesis",
)

DEBIAN_PYTHON = "/usr/bin/python3"
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# The suite as Debian's python3 runs it: records (against openssl, ldns-dane, danetool; the
# hash-slinger `tlsa` cases take 15 s each and test the tool more than us), matching, the CLI,
# check/plan against the DNS lab, and every certbot hook scenario with Debian's certbot.
DEBIAN_SUITE = (
    "tests/test_records_oracles.py",
    "tests/test_matching.py",
    "tests/test_decision.py",
    "tests/test_served.py",
    "tests/test_state.py",
    "tests/test_cli.py",
    "tests/test_check.py",
    "tests/test_certbot_e2e.py",
    "tests/test_installed_package.py",
)
DESELECT = "not tlsa-"

# Written into the copy of tests/: proves that the suite imported the installed package.
INSTALLED_PACKAGE_TEST = f'''"""Written by tests/test_debian.py: tests the installed dane_hook."""

import dane_hook


def test_the_installed_package_is_under_test() -> None:
    assert dane_hook.__file__.startswith("{DIST_PACKAGES}/dane_hook/"), dane_hook.__file__
'''


def run(
    argv: list[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else dict(env),
        cwd=cwd,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def system_environment(**extra: str) -> dict[str, str]:
    """The environment with Debian's tools first: no pyenv shim or virtualenv on PATH."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYENV_VERSION"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PATH=SYSTEM_PATH, LC_ALL="C.UTF-8", **extra)
    return env


# -- fast: the files in packaging/ ------------------------------------------------------------


def control_packages(field_name: str) -> set[str]:
    """The package names of one relation field of packaging/debian/control, all paragraphs."""
    text = (PACKAGING / "debian" / "control").read_text()
    found: set[str] = set()
    for match in re.finditer(rf"^{field_name}:(.*(?:\n[ \t].*)*)", text, flags=re.MULTILINE):
        for relation in match.group(1).split(","):
            name = relation.strip().split(" ")[0].split("(")[0]
            if name and not name.startswith("${"):
                found.add("debhelper" if name == "debhelper-compat" else name)
    return found


def test_the_test_installs_every_dependency_of_the_package() -> None:
    needed = control_packages("Build-Depends") | control_packages("Depends")
    assert {"python3-acme", "python3-josepy", "pybuild-plugin-pyproject"} <= needed
    assert needed <= set(DEBIAN_PACKAGES)


def test_the_changelog_version_is_the_package_version() -> None:
    import dane_hook

    first = (PACKAGING / "debian" / "changelog").read_text().splitlines()[0]
    assert first.startswith(f"dane-hook ({dane_hook.__version__}) "), first


@pytest.mark.parametrize("kind", ["pre", "deploy"])
def test_dropin_execs_dane_hook_found_on_path(kind: str, tmp_path: Path) -> None:
    dropin = DROPINS[kind]
    assert dropin.stat().st_mode & stat.S_IXUSR, f"{dropin} is not executable"
    fake = tmp_path / "bin" / "dane-hook"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "$@" "RENEWED_LINEAGE=$RENEWED_LINEAGE"\nexit 5\n')
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "RENEWED_LINEAGE": "/x/live/mx"}
    done = run([str(dropin)], env=env, timeout=30)
    # exec: certbot logs dane-hook's own status and output.
    assert (done.returncode, done.stdout) == (5, f"{kind} RENEWED_LINEAGE=/x/live/mx\n")


@pytest.mark.parametrize("kind", ["pre", "deploy"])
def test_dropin_without_dane_hook_says_so_and_exits_0(kind: str) -> None:
    done = run([str(DROPINS[kind])], env={"PATH": "/nonexistent"}, timeout=30)
    assert done.returncode == 0
    assert "dane-hook is not installed" in done.stderr


def test_certbot_runs_the_dropin_before_other_deploy_hooks(tmp_path: Path) -> None:
    hooks = pytest.importorskip("certbot._internal.hooks")
    names = ["postfix-reload", "50-dovecot", "01-copy", "Zz", "00-dane-hook", "00-a~"]
    for name in names:
        path = tmp_path / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    listed = [Path(p).name for p in hooks.list_hooks(str(tmp_path))]
    assert listed[0] == "00-dane-hook"
    assert "00-a~" not in listed  # certbot skips editor backups


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_units_verify(tmp_path: Path) -> None:
    # The unit names a bare `dane-hook`, which systemd resolves in /usr/local/bin and /usr/bin;
    # here it may be in neither, so the one the tests run stands in (or any executable: this
    # checks the units, the installed package's units are verified as they are below).
    search = f"{Path(sys.executable).parent}:{SYSTEM_PATH}"
    command = shutil.which("dane-hook", path=search) or shutil.which("true", path=search)
    assert command is not None
    for unit in UNITS:
        text = unit.read_text()
        if unit.suffix == ".service":
            assert "\nExecStart=dane-hook release\n" in text
            text = text.replace("ExecStart=dane-hook ", f"ExecStart={command} ")
        (tmp_path / unit.name).write_text(text)
    done = run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / u.name) for u in UNITS)],
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_timer_is_hourly_with_a_random_delay_and_the_service_sandboxed() -> None:
    timer = UNITS[1].read_text()
    assert "\nOnCalendar=hourly\n" in timer and "\nRandomizedDelaySec=" in timer
    assert "\nWantedBy=timers.target\n" in timer
    service = UNITS[0].read_text()
    for setting in (
        "ProtectSystem=strict",
        "ReadWritePaths=-/etc/dane-hook/served",
        "StateDirectory=dane-hook",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
    ):
        assert f"\n{setting}\n" in service, setting


# -- slow: build, install, run the suite with Debian's python3 ---------------------------------


@dataclass
class Report:
    """What the slow tests saw: seconds per step and Debian's package versions."""

    seconds: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> Iterator[Report]:
    """Printed at the end of the module, past pytest's output capture."""
    seen = Report()
    yield seen
    if not (seen.seconds or seen.versions):
        return
    lines = [f"test_debian: {step}: {seconds:.0f} s" for step, seconds in seen.seconds.items()]
    lines += [f"test_debian: {name}: {version}" for name, version in seen.versions.items()]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print("\n" + "\n".join(lines))
        return
    with capture.global_and_fixture_disabled():  # what capsys.disabled() does
        print("\n" + "\n".join(lines))


def installed_version(package: str) -> str | None:
    done = run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package], timeout=30)
    status, _, version = done.stdout.partition("\t")
    return version if done.returncode == 0 and status.endswith(" installed") else None


def apt_get(*argv: str, timeout: float = 600) -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = system_environment(DEBIAN_FRONTEND="noninteractive")
    done = run([*sudo, "apt-get", *argv], env=env, timeout=timeout)
    assert done.returncode == 0, f"apt-get {' '.join(argv)}:\n{done.stdout[-3000:]}{done.stderr}"


@pytest.fixture(scope="module")
def debian_tools(report: Report) -> Report:
    if shutil.which("apt-get") is None or not Path(DEBIAN_PYTHON).exists():
        pytest.skip("not a Debian machine")
    started = time.monotonic()
    missing = [p for p in DEBIAN_PACKAGES if installed_version(p) is None]
    if missing:
        apt_get("update", "-qq")
        apt_get("install", "-y", "-q", "--no-install-recommends", *missing)
    report.seconds["apt install" if missing else "apt (nothing missing)"] = (
        time.monotonic() - started
    )
    for package in REPORTED:
        report.versions[package] = installed_version(package) or "missing"
    return report


@pytest.fixture(scope="module")
def deb(debian_tools: Report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    started = time.monotonic()
    out = tmp_path_factory.mktemp("deb")
    done = run([str(PACKAGING / "build-deb.sh"), str(out)], timeout=600)
    debian_tools.seconds["build"] = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-5000:]
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.parent == out and path.name.startswith("dane-hook_") and path.exists()
    assert not (ROOT / "debian").exists() and not (ROOT / ".pybuild").exists()
    return path


@pytest.fixture(scope="module")
def installed(deb: Path, debian_tools: Report) -> Iterator[Path]:
    before = installed_version("dane-hook")
    started = time.monotonic()
    apt_get("install", "-y", "-q", "--reinstall", "--allow-downgrades", str(deb))
    debian_tools.seconds["install"] = time.monotonic() - started
    debian_tools.versions["dane-hook"] = installed_version("dane-hook") or "missing"
    try:
        yield deb
    finally:
        if before is None:
            apt_get("purge", "-y", "-q", "dane-hook")


def deb_listing(deb: Path) -> dict[str, str]:
    """path (without the leading ".") -> mode string, from `dpkg-deb -c`."""
    done = run(["dpkg-deb", "-c", str(deb)], timeout=60)
    assert done.returncode == 0, done.stderr
    listing = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        listing[parts[5].removeprefix(".").rstrip("/") or "/"] = parts[0]
    return listing


@pytest.mark.slow
def test_the_deb_holds_every_file_in_its_place(deb: Path) -> None:
    listing = deb_listing(deb)
    executables = [
        "/usr/bin/dane-hook",
        "/etc/letsencrypt/renewal-hooks/pre/00-dane-hook",
        "/etc/letsencrypt/renewal-hooks/deploy/00-dane-hook",
    ]
    for path in executables:
        assert listing.get(path) == "-rwxr-xr-x", (path, listing.get(path))
    for path in (
        "/lib/systemd/system/dane-hook-release.service",
        "/lib/systemd/system/dane-hook-release.timer",
        "/usr/share/man/man1/dane-hook.1.gz",
        "/etc/dane-hook/served",
    ):
        assert path in listing, path
    package = ROOT / "dane_hook"
    shipped = [
        p
        for p in package.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and (p.suffix == ".py" or p.name == "py.typed" or "data" in p.relative_to(package).parts)
    ]
    assert any(p.suffix == ".pem" for p in shipped)
    for file in shipped:
        wanted = f"{DIST_PACKAGES}/dane_hook/{file.relative_to(package)}"
        assert wanted in listing, wanted
    fields = run(["dpkg-deb", "-f", str(deb), "Depends", "Architecture"], timeout=60).stdout
    for floor in (
        "python3-cryptography (>= 38.0)",
        "python3-dnspython (>= 2.3)",
        "python3-acme (>= 2.1)",
        "python3-josepy (>= 1.13)",
    ):
        assert floor in fields
    assert "Architecture: all" in fields


@pytest.mark.slow
def test_the_installed_package_runs_with_debian_python(installed: Path, tmp_path: Path) -> None:
    env = system_environment()
    where = run(
        [DEBIAN_PYTHON, "-c", "import dane_hook; print(dane_hook.__file__)"],
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert where.stdout.strip() == f"{DIST_PACKAGES}/dane_hook/__init__.py", where.stderr
    assert shutil.which("dane-hook", path=SYSTEM_PATH) == "/usr/bin/dane-hook"
    version = run(["/usr/bin/dane-hook", "--version"], env=env, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("dane-hook "), version.stderr
    # The hooks and the unit run the packaged command, not one found first on PATH.
    for kind in ("pre", "deploy"):
        text = Path(f"/etc/letsencrypt/renewal-hooks/{kind}/00-dane-hook").read_text()
        assert "\ndane_hook=/usr/bin/dane-hook\n" in text
    unit = Path("/lib/systemd/system/dane-hook-release.service").read_text()
    assert "\nExecStart=/usr/bin/dane-hook release\n" in unit
    # The man page built into the package is the one the installed code renders, and the one
    # checked in (tests/test_manpage.py keeps that equal to the source's).
    page = run(["zcat", "/usr/share/man/man1/dane-hook.1.gz"], timeout=60).stdout
    rendered = run(
        [DEBIAN_PYTHON, "-m", "dane_hook.cli.manpage"], env=env, cwd=tmp_path, timeout=60
    )
    assert page == rendered.stdout == (PACKAGING / "dane-hook.1").read_text()
    conffiles = run(["dpkg-query", "--showformat=${Conffiles}", "-W", "dane-hook"], timeout=30)
    assert "/etc/letsencrypt/renewal-hooks/deploy/00-dane-hook" in conffiles.stdout
    if shutil.which("systemd-analyze"):
        units = ["/lib/systemd/system/dane-hook-release.service"]
        units.append("/lib/systemd/system/dane-hook-release.timer")
        done = run(["systemd-analyze", "verify", "--man=no", *units], env=env, timeout=60)
        assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.slow
def test_the_suite_passes_against_the_installed_package(
    installed: Path, debian_tools: Report, tmp_path: Path
) -> None:
    copy = tmp_path / "suite"
    shutil.copytree(
        ROOT / "tests",
        copy / "tests",
        ignore=shutil.ignore_patterns("__pycache__", "test_debian.py"),
    )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")  # pytest's markers, addopts
    shutil.copy(ROOT / "README.md", copy / "README.md")  # tests that hold the README to the code
    (copy / "tests" / "test_installed_package.py").write_text(INSTALLED_PACKAGE_TEST)
    assert not (copy / "dane_hook").exists()
    env = system_environment(
        DANE_HOOK_TEST_CERTBOT="/usr/bin/certbot",
        DANE_HOOK_TEST_COMMAND="/usr/bin/dane-hook",
        DANE_HOOK_TEST_DEPLOY_DROPIN="/etc/letsencrypt/renewal-hooks/deploy/00-dane-hook",
    )
    certbot = run(["/usr/bin/certbot", "--version"], env=env, timeout=120)
    debian_tools.versions["certbot --version"] = (certbot.stdout + certbot.stderr).strip()
    started = time.monotonic()
    pytest_args = ["-q", "-p", "no:cacheprovider", "-rfE", "-k", DESELECT, *DEBIAN_SUITE]
    done = run(
        [DEBIAN_PYTHON, "-m", "pytest", *pytest_args],
        env=env,
        cwd=copy,
        timeout=900,
    )
    debian_tools.seconds["Debian suite"] = time.monotonic() - started
    (tmp_path / "pytest.log").write_text(done.stdout + done.stderr)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    debian_tools.versions["Debian suite"] = summary
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 100, summary
