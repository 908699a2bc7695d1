# SPDX-License-Identifier: MIT
"""Runs one benchmark program, through bench_launch when there is one (it forks the program and reports the
program's own wait4 rusage, see bench_launch.c), with a timeout, and reads its RESULT line."""
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

RESULT = re.compile(r"^RESULT (.*)$", re.M)
LAUNCH = re.compile(r"^LAUNCH (.*)$", re.M)


def parse_kv(text):
    return dict(f.split("=", 1) for f in text.split() if "=" in f)


def signal_name(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "signal %d" % sig


def launch_command(cmd, preload, launcher):
    """The command line and environment that run cmd with LD_PRELOAD=preload (if given)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if launcher:
        return [launcher] + (["-p", preload] if preload else []) + cmd, env
    if preload:
        env["LD_PRELOAD"] = preload
    return cmd, env


def wait_or_kill(proc, timeout):
    """Reaps proc with wait4, killing its process group after timeout seconds. Returns (status, rusage,
    timed out)."""
    timed_out = threading.Event()

    def kill():
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        while True:
            try:
                _, status, ru = os.wait4(proc.pid, 0)
                break
            except InterruptedError:
                continue
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
    return status, ru, timed_out.is_set()


def execute(argv, env, timeout):
    """Runs argv; returns (wait status, rusage, timed out, wall seconds, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, start_new_session=True)
        status, ru, timed_out = wait_or_kill(proc, timeout)
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return status, ru, timed_out, wall, out.read().decode(errors="replace"), err.read().decode(errors="replace")


def take_launch_line(r, stdout):
    """Replaces the rusage in r by bench_launch's report of the program; returns the program's exit code, or
    None if there is no LAUNCH line."""
    launch = LAUNCH.findall(stdout)
    if not launch:
        return None
    kv = parse_kv(launch[-1])
    r["wall"] = float(kv["wall"])
    r["maxrss_kib"], r["minflt"], r["majflt"] = int(kv["maxrss_kib"]), int(kv["minflt"]), int(kv["majflt"])
    return int(kv["status"])


def exit_status(code, timed_out, stderr):
    if timed_out:
        return "TIMEOUT"
    if code < 0:
        return "CRASH(%s)" % signal_name(-code)
    if code != 0:
        return "EXIT(%d)" % code
    if "cannot be preloaded" in stderr:
        return "PRELOAD-FAILED"
    return "ok"


def take_result_line(r, stdout):
    """Fills seconds, ops, mops and the extra fields from the RESULT line (status NO-RESULT if it is missing
    or incomplete)."""
    m = RESULT.search(stdout)
    if not m:
        r["status"] = "NO-RESULT"
        return
    kv = parse_kv(m.group(1))
    try:
        r["seconds"], r["ops"] = float(kv.pop("seconds")), int(kv.pop("ops"))
        r["mops"] = float(kv.pop("mops"))
    except (KeyError, ValueError):
        r["status"] = "NO-RESULT"
    kv.pop("bench", None)
    kv.pop("checksum", None)
    r["extra"] = kv


def run_one(cmd, preload, timeout, launcher):
    """Runs cmd (with LD_PRELOAD=preload if given) through the launcher if given. Returns a dict with status,
    seconds, ops, mops, wall, maxrss_kib, minflt, majflt, extra, stderr."""
    argv, env = launch_command(cmd, preload, launcher)
    status, ru, timed_out, wall, stdout, stderr = execute(argv, env, timeout)
    r = {"status": "ok", "wall": wall, "maxrss_kib": ru.ru_maxrss, "minflt": ru.ru_minflt, "majflt": ru.ru_majflt,
         "seconds": None, "ops": None, "mops": None, "extra": {}, "stderr": stderr.strip()[-400:]}
    code = os.waitstatus_to_exitcode(status)  # negative: killed by that signal
    if launcher and not timed_out:
        launched = take_launch_line(r, stdout)
        code = code if launched is None else launched
    r["status"] = exit_status(code, timed_out, stderr)
    if r["status"] == "ok":
        take_result_line(r, stdout)
    return r
