"""What a benchmark ran on, for the report header: the machine, the code, the command."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path


def cpu_model() -> str:
    """The CPU's name, with its family and model numbers and the vector extensions that
    decide inference speed: a VM often shows only "AMD EPYC", and Zen 4 (family 25) and
    Zen 5 (family 26) differ twofold in 8-bit inference."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() and key.strip() not in fields:
                fields[key.strip()] = value.strip()
            if not line.strip() and fields:
                break  # the first processor is enough
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    wanted = ("avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
    have = [f for f in wanted if f in flags]
    return (
        f"{fields['model name']} (family {fields.get('cpu family', '?')}, "
        f"model {fields.get('model', '?')}; {' '.join(have) or 'no AVX-512 VNNI/BF16, no AMX'})"
    )


def machine() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable), {mem:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def source_id() -> str:
    """Which cleancut code was measured: the commit, plus a hash of the package's source as
    it was on disk (the tree may hold uncommitted work)."""
    import hashlib
    import subprocess

    import cleancut

    pkg = Path(cleancut.__file__).resolve().parent
    digest = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        digest.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=pkg,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = "unknown"
    return f"{pkg}, commit {head}, source sha256 {digest.hexdigest()[:12]}"


def command_line() -> str:
    # The environment that changes what runs: our settings, the import path, thread caps.
    keep = ("CLEANCUT_", "PYTHONPATH", "OMP_NUM_THREADS")
    env = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith(keep)]
    exe = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else "python"
    return shlex.join([*env, exe, *sys.argv])
