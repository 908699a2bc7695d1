#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Real programs under each allocator by LD_PRELOAD: peak RSS and wall time, medians of --reps runs.

Programs (each skipped with a note when not installed):
  git-log     `git log --stat` of a generated repository (--commits commits, a few files each)
  git-repack  `git repack -adf` of a copy of it
  git-gc      `git gc` of a copy of it
  git-clone   `git clone --no-local` of it
  sqlite3     300k inserts in one transaction, an index, a grouped query
  python3     dict/list/string churn (python3 from /usr/bin, not a pyenv shim)
  redis       redis-server under the allocator, a client loop of SET/GET (redis-benchmark if installed);
              peak RSS is the server's VmHWM from /proc/<pid>/status just before shutdown

The peak RSS of a one-shot program is wait4's ru_maxrss (the largest of the program and the children it
waited for). The allocators: hakmem (--override), glibc (nothing preloaded), mimalloc, jemalloc, tcmalloc found
as in the benchmark suite, plus --with NAME=LIB.so. The runs interleave the allocators within each repetition,
rotating which goes first. Output: a Markdown table, one row per program (peak RSS MiB, seconds, hakmem's RSS
over glibc's and over the leanest peer's, the peer being mimalloc, jemalloc, tcmalloc or a --with library, not
glibc) and a geometric-mean row; --out writes it to report.md and every run to runs.csv.

Usage: python3 benchmarks/real_programs.py --override build/release/libhakmem_override.so [--reps 5]
"""
import argparse
import csv
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runner.allocators import find_allocators  # noqa: E402

PYTHON_CHURN = r"""
import random
random.seed(1)
keep = []
for rnd in range(40):
    d = {}
    for i in range(20000):
        k = "key-%d-%d" % (rnd, i)
        d[k] = [k * (i % 7 + 1), i, str(i) * (i % 5)]
    keep.append({k: v for k, v in d.items() if hash(k) % 16 == 0})
    if len(keep) > 8:
        keep.pop(0)
    s = " ".join(str(x) for x in range(30000)).split()
    t = sorted(s, key=lambda x: x[::-1])
    del d, s, t
print(sum(len(k) for k in keep))
"""

SQLITE_SCRIPT = """
PRAGMA journal_mode=OFF;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<300000)
INSERT INTO t(name, grp, val) SELECT printf('name-%08d-%s', x, hex(randomblob(8))), x % 1000, x * 0.5 FROM c;
COMMIT;
CREATE INDEX t_name ON t(name);
CREATE INDEX t_grp ON t(grp);
SELECT grp, count(*), sum(val) FROM t WHERE name > 'name-0015' GROUP BY grp ORDER BY 3 DESC LIMIT 3;
"""


def env_for(variant):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if variant.preload:
        env["LD_PRELOAD"] = variant.preload
    return env


LAUNCHER = None  # bench_launch (see bench_launch.c: why a child of Python cannot report its own ru_maxrss)


def run_once(argv, variant, cwd=None, stdin_text=None):
    """Runs argv under the allocator through bench_launch; returns (peak RSS KiB, seconds, status text)."""
    cmd = [LAUNCHER] + (["-p", variant.preload] if variant.preload else []) + argv
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    r = subprocess.run(cmd, cwd=cwd, env=env, input=stdin_text.encode() if stdin_text else None,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    tail = r.stdout[-4096:].decode(errors="replace")
    launch = [ln for ln in tail.splitlines() if ln.startswith("LAUNCH ")]
    if not launch:
        return 0, 0.0, "NO-LAUNCH(%d)" % r.returncode
    kv = dict(f.split("=", 1) for f in launch[-1].split()[1:])
    status = int(kv["status"])
    return int(kv["maxrss_kib"]), float(kv["wall"]), "ok" if status == 0 else "EXIT(%d)" % status


def make_git_repo(path, commits):
    """A repository of `commits` commits touching a few of 200 files each, written by git fast-import."""
    os.makedirs(path)
    subprocess.run(["git", "init", "-q", path], check=True)
    lines = []
    files = {}
    for c in range(1, commits + 1):
        lines.append("commit refs/heads/main\nmark :%d\ncommitter Bench <b@example.com> %d +0000\n" %
                     (c, 1600000000 + c * 60))
        msg = "change %d: update a few files\n" % c
        lines.append("data %d\n%s" % (len(msg), msg))
        if c > 1:
            lines.append("from :%d\n" % (c - 1))
        for k in range(3):
            name = "src/dir%02d/file%03d.c" % ((c * 7 + k) % 20, (c * 13 + k * 31) % 200)
            body = files.get(name, "/* %s */\n" % name)
            body += "int f_%d_%d(int x) { return x * %d + %d; }\n" % (c, k, c, k)
            files[name] = body
            lines.append("M 100644 inline %s\ndata %d\n%s\n" % (name, len(body.encode()), body))
    subprocess.run(["git", "-C", path, "fast-import", "--quiet"], input="".join(lines).encode(), check=True)
    subprocess.run(["git", "-C", path, "symbolic-ref", "HEAD", "refs/heads/main"], check=True)
    subprocess.run(["git", "-C", path, "checkout", "-q", "-f", "main"], check=True)
    subprocess.run(["git", "-C", path, "repack", "-q", "-d"], check=True)


def git_cases(work, commits):
    repo = os.path.join(work, "repo")
    make_git_repo(repo, commits)
    git = ["git", "-c", "gc.auto=0", "-c", "pack.threads=1"]

    def copy():
        dst = tempfile.mkdtemp(dir=work)
        shutil.rmtree(dst)
        shutil.copytree(repo, dst, symlinks=True)
        return dst

    def log(v):
        return run_once(git + ["-C", repo, "log", "--stat"], v)

    def repack(v):
        d = copy()
        try:
            return run_once(git + ["-C", d, "repack", "-q", "-adf"], v)
        finally:
            shutil.rmtree(d)

    def gc(v):
        d = copy()
        try:
            return run_once(git + ["-C", d, "gc", "-q", "--prune=now"], v)
        finally:
            shutil.rmtree(d)

    def clone(v):
        d = tempfile.mkdtemp(dir=work)
        try:
            return run_once(git + ["clone", "-q", "--no-local", repo, os.path.join(d, "c")], v)
        finally:
            shutil.rmtree(d)

    return [("git-log", log), ("git-repack", repack), ("git-gc", gc), ("git-clone", clone)]


def sqlite_case(work):
    def run(v):
        db = os.path.join(work, "bench.db")
        for f in (db,):
            if os.path.exists(f):
                os.remove(f)
        try:
            return run_once(["sqlite3", db], v, stdin_text=SQLITE_SCRIPT)
        finally:
            os.remove(db)
    return ("sqlite3", run)


def python_case(python):
    return ("python3", lambda v: run_once([python, "-c", PYTHON_CHURN], v))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def redis_client_loop(port, requests):
    """SET/GET pairs over one connection in pipelined batches (RESP), when redis-benchmark is missing."""
    s = socket.create_connection(("127.0.0.1", port))
    batch = 500
    val = "v" * 100
    for start in range(0, requests, batch):
        cmds = []
        for i in range(start, start + batch):
            key = "key:%d" % (i % 100000)
            cmds.append("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(val), val))
            cmds.append("*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key))
        s.sendall("".join(cmds).encode())
        need = batch * 2
        buf = b""
        while need > 0:
            buf += s.recv(1 << 20)
            # every reply to SET is +OK, to GET a bulk string: count reply starts line by line
            while True:
                if buf.startswith(b"+OK\r\n"):
                    buf = buf[5:]
                    need -= 1
                elif buf.startswith(b"$"):
                    end = buf.find(b"\r\n")
                    if end < 0:
                        break
                    n = int(buf[1:end])
                    total = end + 2 + max(n, 0) + (2 if n >= 0 else 0)
                    if len(buf) < total:
                        break
                    buf = buf[total:]
                    need -= 1
                else:
                    break
    s.close()


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def redis_case(work, requests):
    def run(v):
        port = free_port()
        srv = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                                "--dir", work], env=env_for(v), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.05)
            t0 = time.monotonic()
            if shutil.which("redis-benchmark"):
                subprocess.run(["redis-benchmark", "-p", str(port), "-q", "-n", str(requests), "-r", "100000",
                                "-d", "100", "-t", "set,get", "-P", "16"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=True)
            else:
                redis_client_loop(port, requests)
            secs = time.monotonic() - t0
            peak = vm_hwm_kib(srv.pid)
            status = "ok" if srv.poll() is None else "EXIT(%d)" % srv.returncode
        finally:
            srv.terminate()
            srv.wait()
        return peak, secs, status
    return ("redis", run)


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def write_tables(results, names, cases, out):
    """results[(case, allocator)] = list of (rss KiB, secs, status)."""
    lines = ["| program | " + " | ".join("%s MB" % n for n in names) + " | " +
             " | ".join("%s s" % n for n in names) + " | hakmem/glibc RSS | hakmem/leanest peer RSS |",
             "|---" * (2 * len(names) + 3) + "|"]
    ratios_glibc, ratios_lean = [], []
    med = {}
    for case in cases:
        for n in names:
            runs = results.get((case, n), [])
            ok = [r for r in runs if r[2] == "ok"]
            med[(case, n)] = ((statistics.median(r[0] for r in ok) / 1024, statistics.median(r[1] for r in ok))
                              if ok and len(ok) == len(runs) else None)
        cells_rss = []
        cells_t = []
        for n in names:
            m = med[(case, n)]
            bad = [r[2] for r in results.get((case, n), []) if r[2] != "ok"]
            cells_rss.append("%.1f" % m[0] if m else (bad[0] if bad else "-"))
            cells_t.append("%.2f" % m[1] if m else "-")
        hk, gl = med.get((case, "hakmem")), med.get((case, "glibc"))
        peers = [med[(case, n)][0] for n in names if n not in ("hakmem", "glibc") and med[(case, n)]]
        rg = hk[0] / gl[0] if hk and gl else None
        rl = hk[0] / min(peers) if hk and peers else None
        if rg:
            ratios_glibc.append(rg)
        if rl:
            ratios_lean.append(rl)
        lines.append("| %s | %s | %s | %s | %s |" % (case, " | ".join(cells_rss), " | ".join(cells_t),
                                                     "%.2f" % rg if rg else "-", "%.2f" % rl if rl else "-"))
    gm_rss = []
    for n in names:
        vals = [med[(c, n)][0] for c in cases if med[(c, n)]]
        gm_rss.append("%.1f" % geomean(vals) if len(vals) == len(cases) else "-")
    gm_t = []
    for n in names:
        vals = [med[(c, n)][1] for c in cases if med[(c, n)]]
        gm_t.append("%.2f" % geomean(vals) if len(vals) == len(cases) else "-")
    lines.append("| geomean | %s | %s | %.2f | %.2f |" % (" | ".join(gm_rss), " | ".join(gm_t),
                                                          geomean(ratios_glibc), geomean(ratios_lean)))
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "report.md"), "w") as f:
            f.write("# Real programs: peak RSS (MB) and wall seconds, medians\n\n" + text)
        with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["program", "allocator", "rep", "peak_rss_kib", "seconds", "status"])
            for (case, n), runs in sorted(results.items()):
                for i, r in enumerate(runs):
                    w.writerow([case, n, i, r[0], "%.4f" % r[1], r[2]])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--override", default="build/release/libhakmem_override.so")
    ap.add_argument("--with", dest="extra", action="append", metavar="NAME=LIB.so")
    ap.add_argument("--allocators", help="comma-separated subset")
    ap.add_argument("--only", help="comma-separated programs (git-log,git-repack,git-gc,git-clone,sqlite3,"
                    "python3,redis)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--commits", type=int, default=3000)
    ap.add_argument("--redis-requests", type=int, default=200000)
    ap.add_argument("--out", help="folder for report.md and runs.csv")
    ap.add_argument("--launcher", default="build/release/benchmarks/bench_launch",
                    help="bench_launch program (from the release build)")
    a = ap.parse_args(argv)

    global LAUNCHER
    LAUNCHER = os.path.abspath(a.launcher)
    if not os.access(LAUNCHER, os.X_OK):
        ap.error("no launcher at %s: build the release preset first" % LAUNCHER)
    wanted = set(a.allocators.split(",")) if a.allocators else None
    allocs, notes = find_allocators(a.override, a.extra, wanted)
    for n in notes:
        print("note:", n, file=sys.stderr)
    work = tempfile.mkdtemp(prefix="hakmem-real-")
    try:
        cases = []
        keep = set(a.only.split(",")) if a.only else None
        if keep is not None and not any(k.startswith("git-") for k in keep):
            pass  # no repository to generate
        elif shutil.which("git"):
            cases += git_cases(work, a.commits)
        else:
            print("note: git not installed", file=sys.stderr)
        if shutil.which("sqlite3"):
            cases.append(sqlite_case(work))
        else:
            print("note: sqlite3 not installed", file=sys.stderr)
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        cases.append(python_case(python))
        if shutil.which("redis-server"):
            cases.append(redis_case(work, a.redis_requests))
        else:
            print("note: redis-server not installed (apt-get install -y redis-server)", file=sys.stderr)
        if keep is not None:
            cases = [c for c in cases if c[0] in keep]
        results = {}
        for rep in range(a.reps):
            order = allocs[rep % len(allocs):] + allocs[:rep % len(allocs)]
            for name, fn in cases:
                for v in order:
                    r = fn(v)
                    results.setdefault((name, v.name), []).append(r)
                    print("rep %d %-10s %-9s %7.1f MB %6.2f s %s" % (rep, name, v.name, r[0] / 1024, r[1], r[2]),
                          file=sys.stderr, flush=True)
        write_tables(results, [v.name for v in allocs], [c[0] for c in cases], a.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
