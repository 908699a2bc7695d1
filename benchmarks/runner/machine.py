# SPDX-License-Identifier: MIT
"""Facts about the machine and the source tree, for the report's header."""
import os
import platform
import subprocess

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def machine_info():
    info = {"nproc": str(os.cpu_count()), "kernel": platform.release(), "cpu": cpu_model(), "glibc": "?"}
    try:
        info["glibc"] = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem"] = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576.0)
    except (OSError, ValueError, IndexError):
        pass
    return info


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def git(*args):
    return subprocess.run(["git", "-C", SOURCE_DIR] + list(args), capture_output=True, text=True,
                          timeout=20).stdout.strip()


def source_version():
    """The source tree's commit, and whether src/ or include/ have changes (tracked or not)."""
    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src", "include")
        untracked = git("status", "--porcelain", "--", "src", "include")
    except (OSError, subprocess.SubprocessError):
        return "?"
    if not head:
        return "?"
    return head + (" with uncommitted changes in src/ or include/" if dirty or untracked else "")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"
