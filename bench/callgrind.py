#!/usr/bin/env python3
"""Instructions per request in the worker's user space, counted by callgrind.

A repeatable figure on a noisy machine (req/s and CPU time drift; instruction
counts do not): runs prefork-httpd under valgrind --tool=callgrind twice, once
answering nothing and once answering N cached keep-alive GETs of a 1 KiB file
over 50 connections, and prints the worker's difference per request with the
functions that cost the most.  Kernel time, most of a request's cost here, is
not in it: read it beside bench/run.py's syscall counts.

    bench/callgrind.py                     # 20,000 requests
    bench/callgrind.py --requests 5000 --top 25
    bench/callgrind.py --httpd OLD/build/src/httpd --modules OLD/build/modules/.libs
    bench/callgrind.py --access-log        # what a logged request costs beside

Valgrind has no openat2(2): under it the server walks paths itself (see
httpd.conf(5), root), which the file cache makes rare on this path.
"""
import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402  (free_port, wait_port, keepalive_requests)


def profile(args, work, requests):
    """Runs the server under callgrind, answers requests, stops it: the worker's output file."""
    out_dir = os.path.join(work, "out-%d" % requests)
    os.mkdir(out_dir)
    os.chmod(out_dir, 0o1777)   # the worker writes its profile after dropping root
    port = bench.free_port()
    conf = os.path.join(work, "httpd-%d.conf" % requests)
    with open(conf, "w") as f:
        f.write('listen = {"127.0.0.1:%d"}\nworkers = 1\npid_file = "%s/httpd-%d.pid"\n'
                'error_log = "%s/error.log"\naccess_log = "%s"\nmodule_dir = "%s"\n'
                'keepalive_requests = 1000000\nlocation "/" { handler = "static" root = "%s/www" }\n'
                % (port, work, requests, work,
                   os.path.join(work, "access-%d.log" % requests) if args.access_log else "off",
                   os.path.abspath(args.modules), work))
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--trace-children=yes",
                             "--callgrind-out-file=%s/callgrind.out.%%p" % out_dir,
                             os.path.abspath(args.httpd), "-F", "-f", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if not bench.wait_port(port, timeout=60):
            raise SystemExit("httpd did not start under valgrind; see %s/error.log" % work)
        if requests:
            bench.keepalive_requests(port, "1k.bin", requests, 50)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    # The master's file and the worker's: the worker is the one that is not the started process.
    files = [f for f in glob.glob(os.path.join(out_dir, "callgrind.out.*"))
             if not f.endswith(".%d" % proc.pid)]
    if len(files) != 1:
        raise SystemExit("expected one worker profile in %s, found %d" % (out_dir, len(files)))
    return files[0]


def total(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit("no totals in %s" % path)


def function_costs(path):
    """Instructions per function in one profile, from callgrind_annotate (inlined code counted where it lands)."""
    annotate = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", path], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, check=False).stdout.decode(errors="replace")
    costs = {}
    for row in annotate.splitlines():
        if "%)" not in row or "PROGRAM TOTALS" in row:
            continue
        count, rest = row.split(None, 1)
        where = os.path.normpath(rest.split(")", 1)[1].strip().split(" [")[0])
        costs[where] = costs.get(where, 0) + int(count.replace(",", ""))
    return costs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--httpd", default=os.path.join(os.path.dirname(HERE), "build/src/httpd"))
    ap.add_argument("--modules", default=os.path.join(os.path.dirname(HERE), "build/modules/.libs"))
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--access-log", action="store_true", help="with the access log on (combined, buffered)")
    args = ap.parse_args()
    if args.requests <= 0:
        raise SystemExit("--requests must be positive")
    bench.tools_install({"valgrind": "valgrind", "callgrind_annotate": "valgrind"})
    work = tempfile.mkdtemp(prefix="httpd-callgrind-")
    try:
        os.chmod(work, 0o755)
        os.mkdir(os.path.join(work, "www"))
        os.chmod(os.path.join(work, "www"), 0o755)
        with open(os.path.join(work, "www", "1k.bin"), "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(os.path.join(work, "www", "1k.bin"), 0o644)
        idle = profile(args, work, 0)
        busy = profile(args, work, args.requests)
        per_request = (total(busy) - total(idle)) / args.requests
        print("%d cached keep-alive 1 KiB requests%s: %.0f instructions per request in the worker's user space"
              % (args.requests, ", access log on" if args.access_log else "", per_request))
        # Per function, busy minus idle: start-up (loading modules, say) is in both runs, not in a request.
        idle_costs, busy_costs = function_costs(idle), function_costs(busy)
        rows = sorted(((cost - idle_costs.get(where, 0), where) for where, cost in busy_costs.items()),
                      reverse=True)[:args.top]
        for cost, where in rows:
            print("%8.0f  %s" % (cost / args.requests, where))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
