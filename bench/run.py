#!/usr/bin/env python3
"""Side-by-side benchmark on loopback: prefork-httpd, nginx and lighttpd.

Same document root, same worker count, access logs off everywhere, interleaved
rounds of wrk.  For each server: requests/s (from wrk) and CPU time per request
(utime+stime of its whole process tree, from /proc), and both as ratios to the
best peer.  On a 2-core machine wrk itself is a bottleneck, so CPU per request
is the figure that separates servers.

    bench/run.py --httpd build/src/httpd --modules build/modules/.libs

--baseline BIN --baseline-modules DIR adds another build of prefork-httpd (the
landed main, say) to the same interleaved rounds, so a change on the request
path is judged against it in one run.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tree_pids(root):
    """root and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(root):
    total = 0
    for pid in tree_pids(root):
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])   # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return total / TICKS


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Peer:
    def __init__(self, name, port, argv, pid_file):
        self.name, self.port, self.argv, self.pid_file = name, port, argv, pid_file
        self.proc = None

    def start(self):
        self.out = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if not wait_port(self.port):
            self.proc.kill()
            self.out.seek(0)
            raise SystemExit("%s did not start: %s\n%s" % (self.name, " ".join(self.argv),
                                                           self.out.read().decode(errors="replace")))

    def root_pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def httpd_peer(name, binary, modules, args, work, docroot):
    port = free_port()
    conf = os.path.join(work, "%s.conf" % name)
    with open(conf, "w") as f:
        f.write('listen = {"127.0.0.1:%d"}\nworkers = %d\npid_file = "%s/%s.pid"\n'
                'error_log = "%s/%s-error.log"\naccess_log = "off"\nmodule_dir = "%s"\n'
                'keepalive_requests = 1000000\n%s\n'
                'location "/" { handler = "static" root = "%s" }\n'
                % (port, args.workers, work, name, work, name, os.path.abspath(modules),
                   "\n".join(args.httpd_directive), docroot))
    return Peer(name, port, [os.path.abspath(binary), "-F", "-f", conf], None)


def make_peers(args, work, docroot):
    user = "www-data" if os.geteuid() == 0 else None
    peers = [httpd_peer("prefork-httpd", args.httpd, args.modules, args, work, docroot)]
    if args.baseline:
        peers.append(httpd_peer("baseline", args.baseline, args.baseline_modules, args, work, docroot))

    if shutil.which("nginx") and not args.no_nginx:
        port = free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write("%sworker_processes %d;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/nginx-error.log;\n"
                    "events { worker_connections 4096; }\n"
                    "http {\n access_log off;\n sendfile on;\n tcp_nopush on;\n keepalive_requests 1000000;\n"
                    " default_type application/octet-stream;\n"
                    " server { listen 127.0.0.1:%d; root %s; }\n}\n"
                    % ("user %s;\n" % user if user else "", args.workers, work, work, port, docroot))
        peers.append(Peer("nginx", port, ["nginx", "-c", conf, "-p", work], None))

    if shutil.which("lighttpd") and not args.no_lighttpd:
        port = free_port()
        conf = os.path.join(work, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write('server.document-root = "%s"\nserver.bind = "127.0.0.1"\nserver.port = %d\n'
                    'server.max-keep-alive-requests = 1000000\n'
                    'server.max-worker = %d\n%s'
                    % (docroot, port, args.workers if args.workers > 1 else 0,
                       'server.username = "%s"\nserver.groupname = "%s"\n' % (user, user) if user else ""))
        peers.append(Peer("lighttpd", port, ["lighttpd", "-D", "-f", conf], None))
    return peers


def wrk(port, path, args):
    out = subprocess.run(["wrk", "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % args.duration,
                          "http://127.0.0.1:%d%s" % (port, path)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=args.duration + 60)
    text = out.stdout.decode()
    requests = re.search(r"(\d+) requests in", text)
    if out.returncode != 0 or requests is None or "Non-2xx" in text or "Socket errors" in text:
        raise SystemExit("wrk failed or saw errors:\n" + text)
    return int(requests.group(1)), text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--httpd", default="build/src/httpd")
    ap.add_argument("--modules", default="build/modules/.libs")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--size", type=int, default=1024, help="file size in bytes")
    ap.add_argument("--httpd-directive", action="append", default=[],
                    help='extra line for our config, e.g. "reuseport = false" (repeatable)')
    ap.add_argument("--baseline", help="another prefork-httpd binary to compare with (e.g. main)")
    ap.add_argument("--baseline-modules", help="its module directory")
    ap.add_argument("--no-nginx", action="store_true")
    ap.add_argument("--no-lighttpd", action="store_true")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="httpd-bench-")
    os.chmod(work, 0o755)
    docroot = os.path.join(work, "www")
    os.mkdir(docroot)
    os.chmod(docroot, 0o755)
    with open(os.path.join(docroot, "file.bin"), "wb") as f:
        f.write(os.urandom(args.size))
    os.chmod(os.path.join(docroot, "file.bin"), 0o644)

    peers = make_peers(args, work, docroot)
    totals = {p.name: [0, 0.0, 0.0] for p in peers}    # requests, seconds, cpu
    try:
        for p in peers:
            p.start()
            wrk(p.port, "/file.bin", argparse.Namespace(**dict(vars(args), duration=1)))  # warm-up
        for r in range(args.rounds):
            for p in peers:
                cpu0, t0 = cpu_seconds(p.root_pid()), time.monotonic()
                n, _ = wrk(p.port, "/file.bin", args)
                elapsed, cpu = time.monotonic() - t0, cpu_seconds(p.root_pid()) - cpu0
                totals[p.name][0] += n
                totals[p.name][1] += elapsed
                totals[p.name][2] += cpu
                print("round %d  %-14s %9.0f req/s  %6.2f us CPU/req" % (r + 1, p.name, n / elapsed,
                                                                         cpu * 1e6 / n), flush=True)
    finally:
        for p in peers:
            p.stop()
        shutil.rmtree(work, ignore_errors=True)

    rps = {k: v[0] / v[1] for k, v in totals.items()}
    cpu = {k: v[2] * 1e6 / v[0] for k, v in totals.items()}
    peers_only = [k for k in totals if k not in ("prefork-httpd", "baseline")]
    print()
    print("%d-byte file, %d worker(s), wrk -t%d -c%d -d%ds, %d interleaved rounds"
          % (args.size, args.workers, args.threads, args.connections, args.duration, args.rounds))
    print("%-14s %12s %14s" % ("server", "req/s", "CPU us/req"))
    for k in totals:
        print("%-14s %12.0f %14.2f" % (k, rps[k], cpu[k]))
    if peers_only:
        best_rps = max(rps[k] for k in peers_only)
        best_cpu = min(cpu[k] for k in peers_only)
        print("prefork-httpd / best peer: req/s ratio %.2f (higher is better), CPU/req ratio %.2f "
              "(lower is better)" % (rps["prefork-httpd"] / best_rps, cpu["prefork-httpd"] / best_cpu))
    if "baseline" in totals:
        print("prefork-httpd / baseline:  req/s ratio %.2f, CPU/req ratio %.2f"
              % (rps["prefork-httpd"] / rps["baseline"], cpu["prefork-httpd"] / cpu["baseline"]))


if __name__ == "__main__":
    main()
