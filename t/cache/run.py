#!/usr/bin/env python3
"""The public cache conformance suite, http-cache-tests (0.4.5, from the npm registry), through our proxy:
the suite's origin bound to loopback (its server.mjs listens on every address: origin.mjs wraps it),
prefork-httpd in front of it, the suite's command-line client against prefork-httpd.  Prints the scores
(required, optimal, check) and fails below --floor required tests.  The proxy has a cache (proxy_cache);
--no-cache scores the plain proxy instead.  Not in `make check` (a few minutes); .ci/run runs it.

    t/cache/run.py --httpd build/src/httpd --modules build/modules/.libs --floor 145 [--show-failed]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import free_port, wait_for  # noqa: E402

SUITE = "http-cache-tests@0.4.5"


def suite_dir(cache):
    """The suite installed from the npm registry under cache (once)."""
    target = os.path.join(cache, "node_modules", "http-cache-tests")
    if not os.path.exists(os.path.join(target, "cli.mjs")):
        os.makedirs(cache, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", cache, SUITE], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
    return target


def listening(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--httpd", required=True)
    ap.add_argument("--modules", required=True)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "prefork-httpd-cache-tests"),
                    help="where the suite is installed")
    ap.add_argument("--floor", type=int, default=0, help="fail below this many required tests passed")
    ap.add_argument("--show-failed", action="store_true")
    ap.add_argument("--no-cache", action="store_true", help="the plain proxy, for comparison")
    args = ap.parse_args()
    hct = suite_dir(args.cache)
    work = tempfile.mkdtemp(prefix="httpd-cache-tests-")
    origin_port, proxy_port = free_port(), free_port()
    env = dict(os.environ, HCT_DIR=hct, npm_config_port=str(origin_port), npm_config_protocol="http",
               npm_config_pidfile=os.path.join(work, "origin.pid"))
    origin = subprocess.Popen(["node", os.path.join(HERE, "origin.mjs")], env=env, cwd=hct,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    conf = os.path.join(work, "httpd.conf")
    with open(conf, "w") as f:
        f.write('listen = {"127.0.0.1:%d"}\nworkers = 2\npid_file = "%s/httpd.pid"\nerror_log = "%s/error.log"\n'
                'access_log = "%s/access.log"\nmodule_dir = "%s"\n'
                'upstream "origin" { server = { "127.0.0.1:%d" } }\n'
                'proxy_cache_path "suite" { path = "%s/cache"  size = "256m" }\n'
                'location "/" { handler = "proxy"  upstream = "origin"%s }\n'
                % (proxy_port, work, work, work, os.path.abspath(args.modules), origin_port, work,
                   "" if args.no_cache else '  proxy_cache = "suite"'))
    httpd = subprocess.Popen([os.path.abspath(args.httpd), "-F", "-f", conf], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if not wait_for(lambda: listening(origin_port), timeout=20) or not wait_for(lambda: listening(proxy_port),
                                                                                     timeout=20):
            sys.exit("the origin or httpd did not start")
        started = time.monotonic()
        out = subprocess.run(["node", "--no-warnings", "cli.mjs"], cwd=hct, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=1200,
                             env=dict(os.environ, npm_config_base="http://127.0.0.1:%d/" % proxy_port,
                                      npm_package_config_id=""))
        if out.returncode != 0:
            sys.exit("the suite's client failed:\n" + out.stderr.decode(errors="replace")[-2000:])
        results = os.path.join(work, "results.json")
        if os.environ.get("HCT_KEEP"):
            results = os.environ["HCT_KEEP"]
        with open(results, "wb") as f:
            f.write(out.stdout)
        score = subprocess.run(["node", os.path.join(HERE, "score.mjs"), results], env=env, stdout=subprocess.PIPE,
                               check=True, timeout=60)
        data = json.loads(score.stdout)
        c = data["count"]
        print("%s through prefork-httpd%s in %.0f s: required %d/%d, optimal %d/%d, check %d/%d"
              % (SUITE, " (plain proxy, no cache)" if args.no_cache else "", time.monotonic() - started, c["required"][0], c["required"][1], c["optimal"][0],
                 c["optimal"][1], c["check"][0], c["check"][1]))
        if args.show_failed:
            print("required tests failed:\n  " + "\n  ".join(data["failed"]))
        if c["required"][0] < args.floor:
            sys.exit("required score %d is below the floor %d" % (c["required"][0], args.floor))
    finally:
        for proc in (httpd, origin):
            try:
                os.killpg(proc.pid, 15)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
