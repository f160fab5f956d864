#!/usr/bin/env python3
"""Side-by-side benchmark on loopback: prefork-httpd, nginx, lighttpd, h2o and a
trivial epoll responder (the floor: what the kernel alone costs).

Same document root, same worker count, access logs off (but in ka-1k-log),
sendfile on, unlimited keep-alive requests.  Every server runs the same
scenario in interleaved rounds (A B C D A B C D ...), and the median round
is reported: requests/s from wrk, and CPU time per request (utime+stime of
the server's whole process tree, from /proc).  Ratios are taken within each
round and their median reported.  On a 2-core machine wrk itself caps
throughput, so CPU per request is the figure that separates servers; wrk's
own CPU per request is shown beside it, and "ceiling", the floor that never
sleeps, shows the most req/s wrk makes here.

    bench/run.py                       # everything, installs wrk/nginx/lighttpd/h2o
    bench/run.py --scenarios ka-1k --rounds 5
    bench/run.py --baseline OLD/src/httpd --baseline-modules OLD/modules/.libs

--baseline adds another build of prefork-httpd (the landed main, say) to the
same rounds, so a change on the request path is judged against it in one run.
Results: bench/results/latest.md and latest.svg, and docs/benchmarks.md.
"""
import argparse
import atexit
import base64
import collections
import datetime
import hashlib
import hmac
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# name: (file, connections, workers, Connection: close, access log, TLS)
SCENARIOS = {
    "ka-1k":         ("1k.bin", 50, 1, False, False, False),
    "close-1k":      ("1k.bin", 50, 1, True, False, False),
    "ka-1m":         ("1m.bin", 50, 1, False, False, False),
    "ka-1k-c1000":   ("1k.bin", 1000, 1, False, False, False),
    "idle-10k":      ("1k.bin", 10000, 1, False, False, False),
    # Not timed: strace -c counts the syscalls of 10,000 cached keep-alive requests over 50 connections,
    # and perf counts them again under wrk (strace slows the server enough to hide an empty read).
    "syscalls-ka-1k": ("1k.bin", 50, 1, False, False, False),
    "workers-2":     ("1k.bin", 50, 2, False, False, False),
    "ka-1k-log":     ("1k.bin", 50, 1, False, True, False),
    # A limit_req zone on the 1 KiB file, its rate high enough to admit everything, against nginx's
    # limit_req with the same zone; our server without the limit runs in the same rounds.
    "ka-1k-limited": ("1k.bin", 50, 1, False, False, "limited"),
    # TLS against nginx only (same certificate, protocols and ciphers): keep-alive, and a full
    # handshake per request (wrk does not resume sessions).
    "tls-ka-1k":     ("1k.bin", 50, 1, False, False, True),
    "tls-handshake": ("1k.bin", 50, 1, True, False, True),
    # A reverse proxy in front of the floor responder, against nginx's proxy_pass with keepalive.
    "proxy-ka-1k":   ("1k.bin", 50, 1, False, False, "proxy"),
    # Hits of a proxy cache (every request after the first), the floor as the origin with max-age=3600, against
    # nginx's proxy_cache; our static module serving the same 1 KiB file runs in the same rounds
    # (prefork-httpd-static).
    "proxy-cache-hit-1k": ("1k.bin", 50, 1, False, False, "proxy-cache"),
    # Not timed: one 1 GiB PUT over one connection, against nginx's dav_methods PUT (lighttpd's
    # mod_webdav is another package, h2o writes no files): the server's peak memory while it streams.
    "upload-1g":     ("up/upload-1g.bin", 1, 1, False, False, "upload"),
    # HTTP/2 with h2load against nginx, h2o, Apache (mod_http2, mpm_event) and lighttpd: over TLS (ALPN h2)
    # and cleartext with prior knowledge (h2c); H2_STREAMS gives the streams per connection (h2load -m).
    "h2-1k":           ("1k.bin", 10, 1, False, False, "h2"),
    "h2-1m":           ("1m.bin", 10, 1, False, False, "h2"),
    "h2c-1k":          ("1k.bin", 10, 1, False, False, "h2c"),
    "h2-many-streams": ("1k.bin", 1, 1, False, False, "h2"),
    # Not timed: 2,000 h2c connections that made one request each and stay open: bytes per idle connection.
    "h2-idle-2k":      ("1k.bin", 2000, 1, False, False, "h2c"),
    # Routing that must not grow with the configuration: a request to the last of 5,000 server blocks, to the
    # last of 5,000 prefix locations, and past a map of 1,000 rewrite rules (none of which matches), each
    # beside the same server with one block, one location and no rules in the same rounds (prefork-httpd-one),
    # and nginx with the big configuration.
    "vhosts-5k":       ("1k.bin", 50, 1, False, False, "vhosts"),
    "locations-5k":    ("l4999/1k.bin", 50, 1, False, False, "locations"),
    "rewrite-1k":      ("1k.bin", 50, 1, False, False, "rewrites"),
    # Compression on the fly (Accept-Encoding: br or gzip) of text files, against nginx's gzip and its
    # brotli filter (libnginx-mod-http-brotli-filter) and h2o's compress, at the same levels (gzip 6, br 5);
    # ka-1k-br has our server without compression beside it in the same rounds (prefork-httpd-plain).
    # Signed GETs of the 1 KiB file (RFC 9421 hmac-sha256, each with its own nonce, signed before the round by
    # the client): the nonce store in shared memory (prefork-httpd) and in a local redis-server
    # (prefork-httpd-redis, same rounds); no peer has RFC 9421.  The Redis round trip's cost is the ratio.
    "sign-rfc9421":    ("1k.bin", 50, 1, False, False, "sign"),
    "ka-1k-br":        ("1k.txt", 50, 1, False, False, "compress-br"),
    "ka-100k-gzip":    ("100k.txt", 50, 1, False, False, "compress-gzip"),
    "ka-100k-br":      ("100k.txt", 50, 1, False, False, "compress-br"),
}
COMPRESS = {"compress-br": "br", "compress-gzip": "gzip"}
COMPRESS_LEVEL = {"br": 5, "gzip": 6}
OURS_PLAIN = "prefork-httpd-plain"   # beside ka-1k-br's prefork-httpd, uncompressed, in the same rounds
NGINX_BROTLI = "/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so"
ROUTING = ("vhosts", "locations", "rewrites")
ROUTING_BLOCKS = {"vhosts": 5000, "locations": 5000, "rewrites": 1000}
OURS_ONE = "prefork-httpd-one"   # beside the routing scenarios' prefork-httpd, with one block
ROUTING_RSS = {}   # scenario: {server: RSS bytes of its processes after the rounds}
H2_STREAMS = {"h2-1k": 10, "h2-1m": 10, "h2c-1k": 10, "h2-many-streams": 100}
H2_KINDS = ("h2", "h2c")
TLS_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
               "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
               "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384")
# CPU placement (--pin): with one worker each, every server runs on SERVER_CPUS and the load
# (wrk, the proxy's backend) on CLIENT_CPUS.  Left to the scheduler, a server's CPU per request
# moved by 20% with the CPU it happened to land on (measured: a worker on CPU 0 with wrk on CPU 1
# cost 7.4 us per ka-1k request, the other way round 6.0 us), so a round measured placement.
CLIENT_CPUS, SERVER_CPUS = None, None
# One timed run of wrk against one server, and a server's figures over the rounds of a scenario.
Sample = collections.namedtuple("Sample", "rps cpu client busy softirq")   # CPU figures in µs per request
Row = collections.namedtuple("Row", "rps cpu cpu_min cpu_max client busy softirq rounds")   # medians; rounds: Samples
DEBIAN_TOOLS = {"wrk": "wrk", "nginx": "nginx-light", "lighttpd": "lighttpd", "h2o": "h2o", "strace": "strace",
                "perf": "linux-perf", "h2load": "nghttp2-client", "apache2": "apache2", "redis-server": "redis-server",
                "/usr/lib/lighttpd/mod_openssl.so": "lighttpd-mod-openssl",
                NGINX_BROTLI: "libnginx-mod-http-brotli-filter"}
UPLOAD_ROUNDS = 3
COUNTED = ("idle-10k", "syscalls-ka-1k", "upload-1g", "h2-idle-2k")   # measured once per server, not in timed rounds
OURS_LOG_OFF = "prefork-httpd-log-off"   # beside ka-1k-log's prefork-httpd, in the same rounds
OURS_UNLIMITED = "prefork-httpd-unlimited"   # beside ka-1k-limited's prefork-httpd, in the same rounds
OURS_STATIC = "prefork-httpd-static"   # beside proxy-cache-hit-1k's prefork-httpd: the same file, from static
OURS_REDIS = "prefork-httpd-redis"   # beside sign-rfc9421's prefork-httpd: the nonce store in Redis
OURS = ("prefork-httpd", "baseline", OURS_LOG_OFF, OURS_UNLIMITED, OURS_ONE, OURS_PLAIN, OURS_STATIC, OURS_REDIS)
SIGN_SECRET = bytes(range(64))
SIGN_POOL_RPS = 120000   # signed requests made ready per second of a round: more than wrk sends here
SIGN_WRK_SCRIPT = """local reqs, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do
    local input, sig = line:match("^(.-)\t(.*)$")
    reqs[#reqs + 1] = wrk.format("GET", "/1k.bin", {["Signature-Input"] = input, ["Signature"] = sig})
  end
end
function request()
  i = i + 1
  return reqs[i]
end
"""
LIMIT_RATE, LIMIT_BURST = 1000000, 100000   # requests a second, and burst: nothing is ever refused
# The floor that never sleeps: a client writing to a sleeping server pays for waking it, so this is the
# most req/s wrk reaches here, whatever the server.  Up only for its own turn (it keeps a core busy) and
# only where req/s is a target of one-worker scenarios that the floor answers.
CEILING = "ceiling"
CEILING_SCENARIOS = ("ka-1k", "close-1k")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tree_pids(root):
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
            total += int(fields[11]) + int(fields[12])   # utime, stime (all threads)
        except (OSError, ValueError, IndexError):
            pass
    return total / TICKS


def softirq_seconds(cpus):
    """Softirq time of these CPUs so far (/proc/stat).  The kernel accounts it apart from every task, so a
    server's utime+stime leave out the loopback delivery its own sends run on its CPU."""
    total = 0
    with open("/proc/stat") as f:
        for line in f:
            fields = line.split()
            if fields[0].startswith("cpu") and fields[0][3:].isdigit() and int(fields[0][3:]) in cpus:
                total += int(fields[7])
    return total / TICKS


def rss_bytes(root, workers_only=False):
    """The RSS of root's process tree (workers_only: of its descendants, the master's own left out)."""
    total = 0
    for pid in tree_pids(root):
        if workers_only and pid == root:
            continue
        try:
            with open("/proc/%d/statm" % pid) as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            pass
    return total


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def pinned(cpus):
    """A preexec_fn confining a child (and what it forks) to cpus, or None."""
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


class Peer:
    def __init__(self, name, port, argv, floor=False, ceiling=False, host=None):
        self.name, self.port, self.argv, self.floor, self.ceiling = name, port, argv, floor, ceiling
        self.host = host   # the Host header wrk sends, when the scenario picks a virtual host
        self.proc = None
        self.cpus = None

    def start(self):
        self.out = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=pinned(self.cpus))
        if not wait_port(self.port):
            self.stop()
            self.out.seek(0)
            raise SystemExit("%s did not start: %s\n%s" % (self.name, " ".join(self.argv),
                                                           self.out.read().decode(errors="replace")))

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.proc = None


def ours_main(name, port, workers, work, modules, access_log="off", flags=""):
    """The part every configuration of ours here starts with: listener, processes, files, connections."""
    return ('listen = {"127.0.0.1:%d%s"}\nworkers = %d\npid_file = "%s/%s.pid"\n'
            'error_log = "%s/%s-error.log"\naccess_log = "%s"\nmodule_dir = "%s"\n'
            'keepalive_requests = 1000000\nworker_connections = 20000\nkeepalive_timeout = 60\n'
            % (port, flags, workers, work, name, work, name, access_log, os.path.abspath(modules)))


def httpd_peer(name, binary, modules, workers, log, work, docroot, tls=False, backend=None, upload=False,
               limited=False, h2c=False):
    port = free_port()
    if backend is not None:
        conf = os.path.join(work, "%s-proxy.conf" % name)
        with open(conf, "w") as f:
            f.write(ours_main(name, port, workers, work, modules) +
                    'upstream "floor" {\n  server = { "127.0.0.1:%d" }\n  keepalive = 64\n}\n'
                    'location "/" { handler = "proxy"  upstream = "floor" }\n' % backend)
        return Peer(name, port, [os.path.abspath(binary), "-F", "-f", conf])
    conf = os.path.join(work, "%s-%d%s%s%s%s%s.conf" % (name, workers, "-log" if log else "", "-tls" if tls else "",
                                                        "-upload" if upload else "", "-limited" if limited else "",
                                                        "-h2c" if h2c else ""))
    with open(conf, "w") as f:
        f.write(ours_main(name, port, workers, work, modules,
                          os.path.join(work, name + "-access.log") if log else "off",
                          " tls" if tls else " h2c" if h2c else "") +
                '%s%s%s'
                'location "/" { handler = "static" root = "%s"%s }\n'
                % ('tls_certificate = "%s/tls.pem"\ntls_certificate_key = "%s/tls.key"\n'
                   'tls_ciphers = "%s"\n' % (work, work, TLS_CIPHERS) if tls else "",
                   'location "/up/" { handler = "static" root = "%s/up" writable = true max_body_size = "2g" }\n' % docroot
                   if upload else "",
                   'limit_req_zone "one" { key = "$remote_addr" rate = "%dr/s" size = "10m" }\n' % LIMIT_RATE
                   if limited else "",
                   docroot,
                   ' limit_req "one" { burst = %d nodelay = true }' % LIMIT_BURST if limited else ""))
    return Peer(name, port, [os.path.abspath(binary), "-F", "-f", conf])


def nginx_main(user, workers, work):
    """The part every nginx configuration here starts with: processes, files, connections."""
    return ("%sworker_processes %d;\nworker_rlimit_nofile 30000;\ndaemon off;\npid %s/nginx.pid;\n"
            "error_log %s/nginx-error.log;\nevents { worker_connections 20000; }\n"
            % ("user %s;\n" % user if user else "", workers, work, work))


def tls_material(work):
    """One ECDSA P-256 certificate for every TLS peer."""
    if os.path.exists(os.path.join(work, "tls.pem")):
        return
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", os.path.join(work, "tls.key"), "-out", os.path.join(work, "tls.pem"), "-days", "2",
                    "-subj", "/CN=localhost"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(os.path.join(work, "tls.key"), 0o600)
    os.chmod(os.path.join(work, "tls.pem"), 0o644)


def proxy_peers(args, work, workers, user, backend):
    """prefork-httpd and nginx, each proxying to the floor responder on port backend."""
    peers = [httpd_peer("prefork-httpd", args.httpd, args.modules, workers, False, work, None, backend=backend)]
    if args.baseline:
        peers.append(httpd_peer("baseline", args.baseline, args.baseline_modules, workers, False, work, None,
                                backend=backend))
    if shutil.which("nginx"):
        port = free_port()
        conf = os.path.join(work, "nginx-proxy-%d.conf" % workers)
        with open(conf, "w") as f:
            f.write(nginx_main(user, workers, work) +
                    "http {\n access_log off;\n keepalive_requests 1000000;\n keepalive_timeout 60;\n"
                    " upstream floor { server 127.0.0.1:%d; keepalive 64; }\n"
                    " server { listen 127.0.0.1:%d;\n  location / { proxy_pass http://floor;\n"
                    "   proxy_http_version 1.1;\n   proxy_set_header Connection \"\"; } }\n}\n"
                    % (backend, port))
        peers.append(Peer("nginx", port, ["nginx", "-c", conf, "-p", work]))
    return peers


def proxy_cache_peers(args, work, docroot, workers, user, backend):
    """prefork-httpd's proxy cache and nginx's proxy_cache in front of the floor (max-age=3600), and our static
    module serving the file the floor's body stands for, in the same rounds.  No baseline: a main before the
    cache would not load the configuration."""
    port = free_port()
    conf = os.path.join(work, "prefork-httpd-cache.conf")
    store = os.path.join(work, "httpd-cache")
    shutil.rmtree(store, ignore_errors=True)
    with open(conf, "w") as f:
        f.write(ours_main("prefork-httpd", port, workers, work, args.modules) +
                'proxy_cache_path "bench" { path = "%s"  size = "64m" }\n'
                'upstream "floor" {\n  server = { "127.0.0.1:%d" }\n  keepalive = 64\n}\n'
                'location "/" { handler = "proxy"  upstream = "floor"  proxy_cache = "bench" }\n' % (store, backend))
    peers = [Peer("prefork-httpd", port, [os.path.abspath(args.httpd), "-F", "-f", conf]),
             httpd_peer(OURS_STATIC, args.httpd, args.modules, workers, False, work, docroot)]
    if shutil.which("nginx"):
        port = free_port()
        conf = os.path.join(work, "nginx-proxy-cache-%d.conf" % workers)
        store = os.path.join(work, "nginx-cache")
        shutil.rmtree(store, ignore_errors=True)
        with open(conf, "w") as f:
            f.write(nginx_main(user, workers, work) +
                    "http {\n access_log off;\n sendfile on;\n tcp_nopush on;\n keepalive_requests 1000000;\n"
                    " keepalive_timeout 60;\n proxy_cache_path %s keys_zone=bench:10m max_size=64m;\n"
                    " upstream floor { server 127.0.0.1:%d; keepalive 64; }\n"
                    " server { listen 127.0.0.1:%d;\n  location / { proxy_pass http://floor;\n"
                    "   proxy_http_version 1.1;\n   proxy_set_header Connection \"\";\n   proxy_cache bench; } }\n}\n"
                    % (store, backend, port))
        peers.append(Peer("nginx", port, ["nginx", "-c", conf, "-p", work]))
    return peers


def limited_peers(args, work, docroot, workers, user):
    """prefork-httpd with a limit_req zone and without, and nginx with the same zone."""
    peers = [httpd_peer("prefork-httpd", args.httpd, args.modules, workers, False, work, docroot, limited=True),
             httpd_peer(OURS_UNLIMITED, args.httpd, args.modules, workers, False, work, docroot)]
    if shutil.which("nginx"):   # no baseline here: a main before limit_req would not load the zone
        port = free_port()
        conf = os.path.join(work, "nginx-%d-limited.conf" % workers)
        with open(conf, "w") as f:
            f.write(nginx_main(user, workers, work) +
                    "http {\n access_log off;\n sendfile on;\n tcp_nopush on;\n keepalive_requests 1000000;\n"
                    " keepalive_timeout 60;\n default_type application/octet-stream;\n"
                    " limit_req_zone $binary_remote_addr zone=one:10m rate=%dr/s;\n"
                    " server { listen 127.0.0.1:%d; root %s;\n  limit_req zone=one burst=%d nodelay; }\n}\n"
                    % (LIMIT_RATE, port, docroot,
                       LIMIT_BURST))
        peers.append(Peer("nginx", port, ["nginx", "-c", conf, "-p", work]))
    return peers


def sign_peers(args, work, docroot, workers, user):
    """prefork-httpd with the sign check on the 1 KiB file, its nonce store in shared memory and in a
    redis-server started here (pinned with the client, nothing saved; its CPU is not the server's)."""
    key = os.path.join(work, "sign.key")
    with open(key, "w") as f:
        f.write(base64.b64encode(SIGN_SECRET).decode() + "\n")
    os.chmod(key, 0o600)
    if user:
        shutil.chown(key, user)
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", work, "--daemonize", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                             preexec_fn=pinned(CLIENT_CPUS))
    atexit.register(lambda: (redis.kill(), redis.wait()))
    if not wait_port(redis_port):
        raise SystemExit("redis-server did not start")
    peers = []
    for name, store in (("prefork-httpd", "sign_nonce_store { entries = 4194304 }\n"),
                        (OURS_REDIS, 'sign_nonce_store { backend = "redis"  redis = "127.0.0.1:%d"  prefix = "%s:" }\n'
                         % (redis_port, "bench"))):
        port = free_port()
        conf = os.path.join(work, "%s-sign.conf" % name)
        with open(conf, "w") as f:
            f.write(ours_main(name, port, workers, work, args.modules) + store +
                    'location "/" { handler = "static" root = "%s" check = {"sign"}\n'
                    '  sign { key "bench" { secret_file = "%s" } } }\n' % (docroot, key))
        peers.append(Peer(name, port, [os.path.abspath(args.httpd), "-F", "-f", conf]))
    # A fleet long up: its epoch in the past, so nothing is refused as "restarted".
    s = socket.create_connection(("127.0.0.1", redis_port), timeout=5)
    s.sendall(b"*3\r\n$3\r\nSET\r\n$11\r\nbench:epoch\r\n$1\r\n0\r\n")
    s.recv(64)
    s.close()
    return peers


def sign_pool(port, count, work):
    """count requests for /1k.bin, each signed now with its own nonce, as "Signature-Input\tSignature" lines."""
    token = os.urandom(6).hex()
    created = int(time.time())
    path = os.path.join(work, "sign-pool.txt")
    with open(path, "w") as f:
        for i in range(count):
            params = '("@method" "@target-uri");created=%d;keyid="bench";alg="hmac-sha256";nonce="%s-%d"' % (
                created, token, i)
            base = '"@method": GET\n"@target-uri": http://127.0.0.1:%d/1k.bin\n"@signature-params": %s' % (port, params)
            mac = base64.b64encode(hmac.new(SIGN_SECRET, base.encode(), hashlib.sha256).digest()).decode()
            f.write("sig1=%s\tsig1=:%s:\n" % (params, mac))
    return path


def routing_config(kind, docroot, big):
    """Our configuration for a routing scenario: 5,000 servers or locations, or 1,000 rewrite rules (big), or one."""
    if kind == "vhosts":
        n = ROUTING_BLOCKS[kind] if big else 1
        return "".join('server "site%d.test" {\n  location "/" { handler = "static" root = "%s" }\n}\n'
                       % (i if big else 4999, docroot) for i in range(n))
    if kind == "locations":
        names = range(ROUTING_BLOCKS[kind]) if big else [4999]
        return "".join('location "/l%d/" { handler = "static" root = "%s" }\n' % (i, docroot) for i in names)
    rules = ", ".join("'^/old-page-%d$ /new/%d permanent'" % (i, i) for i in range(ROUTING_BLOCKS[kind])) if big else ""
    return 'location "/" {\n  handler = "static"\n  root = "%s"\n  rewrite = {%s}\n}\n' % (docroot, rules)


def routing_peers(args, work, docroot, workers, user, kind):
    """prefork-httpd with the big configuration and with one block, the baseline, and nginx (big)."""
    host = "site4999.test" if kind == "vhosts" else None
    peers = []
    names = [("prefork-httpd", args.httpd, args.modules, True), (OURS_ONE, args.httpd, args.modules, False)]
    if args.baseline and kind != "rewrites":   # a main before rewrite would not load the rules
        names.append(("baseline", args.baseline, args.baseline_modules, True))
    for name, binary, modules, big in names:
        port = free_port()
        conf = os.path.join(work, "%s-%s.conf" % (name, kind))
        with open(conf, "w") as f:
            f.write(ours_main(name, port, workers, work, modules) + routing_config(kind, docroot, big))
        peers.append(Peer(name, port, [os.path.abspath(binary), "-F", "-f", conf], host=host))
    if shutil.which("nginx"):
        port = free_port()
        conf = os.path.join(work, "nginx-%s.conf" % kind)
        if kind == "vhosts":
            body = "".join(" server { listen 127.0.0.1:%d; server_name site%d.test; root %s; }\n" % (port, i, docroot)
                           for i in range(ROUTING_BLOCKS[kind]))
        elif kind == "locations":
            body = " server { listen 127.0.0.1:%d;\n%s }\n" % (port, "".join(
                "  location /l%d/ { alias %s/; }\n" % (i, docroot) for i in range(ROUTING_BLOCKS[kind])))
        else:
            body = " server { listen 127.0.0.1:%d; root %s;\n%s }\n" % (port, docroot, "".join(
                "  rewrite ^/old-page-%d$ /new/%d permanent;\n" % (i, i) for i in range(ROUTING_BLOCKS[kind])))
        with open(conf, "w") as f:
            f.write(nginx_main(user, workers, work) +
                    "http {\n access_log off;\n sendfile on;\n tcp_nopush on;\n keepalive_requests 1000000;\n"
                    " keepalive_timeout 60;\n default_type application/octet-stream;\n"
                    " server_names_hash_max_size 32768;\n server_names_hash_bucket_size 128;\n%s}\n"
                    % body)
        peers.append(Peer("nginx", port, ["nginx", "-c", conf, "-p", work], host=host))
    return peers


def h2o_http1_peer(work, name, workers, user, docroot, extra=""):
    """h2o serving docroot over HTTP/1.1, extra (its own YAML lines) added at the top level."""
    port = free_port()
    conf = os.path.join(work, name + ".conf")
    with open(conf, "w") as f:
        f.write("%slisten:\n  host: 127.0.0.1\n  port: %d\nnum-threads: %d\nmax-connections: 20000\n"
                "http1-request-timeout: 60\n%shosts:\n  default:\n    paths:\n      /:\n        file.dir: %s\n"
                % ("user: %s\n" % user if user else "", port, workers, extra, docroot))
    return Peer("h2o", port, ["h2o", "-c", conf])


def compress_peers(args, work, docroot, workers, user, kind):
    """prefork-httpd compressing with the coding (and without, for 1 KiB), the baseline where it has the
    coding, nginx (gzip, or its brotli filter) and h2o, all at COMPRESS_LEVEL, from 256 bytes."""
    coding = COMPRESS[kind]
    level = COMPRESS_LEVEL[coding]
    peers = []
    names = [("prefork-httpd", args.httpd, args.modules, 'compress = {"%s"} compress_level = {"%s %d"} '
              'compress_min_length = 256' % (coding, coding, level)),
             (OURS_PLAIN, args.httpd, args.modules, "")]
    if args.baseline and coding == "gzip":   # a main before compress has gzip alone
        names.append(("baseline", args.baseline, args.baseline_modules,
                      "gzip = true gzip_level = %d gzip_min_length = 256" % level))
    for name, binary, modules, options in names:
        port = free_port()
        conf = os.path.join(work, "%s-%s.conf" % (name, kind))
        with open(conf, "w") as f:
            f.write(ours_main(name, port, workers, work, modules) +
                    'location "/" { handler = "static" root = "%s" %s }\n' % (docroot, options))
        peers.append(Peer(name, port, [os.path.abspath(binary), "-F", "-f", conf]))
    if shutil.which("nginx") and (coding == "gzip" or os.path.exists(NGINX_BROTLI)):
        port = free_port()
        conf = os.path.join(work, "nginx-%s.conf" % kind)
        if coding == "gzip":
            load, body = "", " gzip on;\n gzip_comp_level %d;\n gzip_min_length 256;\n gzip_types text/plain;\n" % level
        else:
            load = "load_module %s;\n" % NGINX_BROTLI
            body = " brotli on;\n brotli_comp_level %d;\n brotli_min_length 256;\n brotli_types text/plain;\n" % level
        with open(conf, "w") as f:
            f.write(load + nginx_main(user, workers, work) +
                    "http {\n access_log off;\n sendfile on;\n tcp_nopush on;\n keepalive_requests 1000000;\n"
                    " keepalive_timeout 60;\n include /etc/nginx/mime.types;\n%s"
                    " server { listen 127.0.0.1:%d; root %s; }\n}\n" % (body, port, docroot))
        peers.append(Peer("nginx", port, ["nginx", "-c", conf, "-p", work]))
    if shutil.which("h2o"):
        peers.append(h2o_http1_peer(work, "h2o-%s" % kind, workers, user, docroot,
                                    "compress: { %s: %d }\ncompress-minimum-size: 256\n" % (coding, level)))
    return peers


def compresses(peer, path, coding):
    """Whether peer answers path in coding: a peer that does not is left out, and says so."""
    try:
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-D", "-", "-H", "Accept-Encoding: " + coding,
                              "http://127.0.0.1:%d/%s" % (peer.port, path)], stdout=subprocess.PIPE, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return ("content-encoding: %s" % coding).encode() in out.stdout.lower()


APACHE_MODULES = "/usr/lib/apache2/modules"


def h2_peers(args, work, docroot, workers, user, cleartext):
    """Every server speaking HTTP/2, same document root and workers: over TLS with the same certificate,
    protocols and ciphers (ALPN h2), or cleartext with prior knowledge."""
    tls_material(work)
    suffix = "h2c" if cleartext else "h2"
    peers = [httpd_peer("prefork-httpd", args.httpd, args.modules, workers, False, work, docroot,
                        tls=not cleartext, h2c=cleartext)]
    if args.baseline:   # a main that speaks HTTP/2 (a main before it would fail h2load's check, and say so)
        peers.append(httpd_peer("baseline", args.baseline, args.baseline_modules, workers, False, work, docroot,
                                tls=not cleartext, h2c=cleartext))
    if shutil.which("nginx"):
        port = free_port()
        conf = os.path.join(work, "nginx-%d-%s.conf" % (workers, suffix))
        tls_text = ("" if cleartext else
                    " ssl_protocols TLSv1.2 TLSv1.3;\n ssl_ciphers %s;\n ssl_session_tickets on;\n"
                    " ssl_certificate %s/tls.pem;\n ssl_certificate_key %s/tls.key;\n" % (TLS_CIPHERS, work, work))
        with open(conf, "w") as f:
            f.write(nginx_main(user, workers, work) +
                    "http {\n access_log off;\n sendfile on;\n tcp_nopush on;\n keepalive_requests 1000000;\n"
                    " keepalive_timeout 60;\n default_type application/octet-stream;\n%s"
                    " server { listen 127.0.0.1:%d%s http2; root %s; }\n}\n"
                    % (tls_text, port,
                       "" if cleartext else " ssl", docroot))
        peers.append(Peer("nginx", port, ["nginx", "-c", conf, "-p", work]))
    if shutil.which("h2o"):
        port = free_port()
        conf = os.path.join(work, "h2o-%d-%s.conf" % (workers, suffix))
        ssl_text = ("" if cleartext else
                    "  ssl:\n    certificate-file: %s/tls.pem\n    key-file: %s/tls.key\n"
                    "    cipher-suite: \"%s\"\n    minimum-version: TLSv1.2\n" % (work, work, TLS_CIPHERS))
        with open(conf, "w") as f:
            f.write("%slisten:\n  host: 127.0.0.1\n  port: %d\n%snum-threads: %d\nmax-connections: 20000\n"
                    "http2-idle-timeout: 60\nhosts:\n  default:\n    paths:\n      /:\n        file.dir: %s\n"
                    % ("user: %s\n" % user if user else "", port, ssl_text, workers, docroot))
        peers.append(Peer("h2o", port, ["h2o", "-c", conf]))
    if shutil.which("apache2") and os.path.exists(os.path.join(APACHE_MODULES, "mod_http2.so")):
        port = free_port()
        conf = os.path.join(work, "apache-%d-%s.conf" % (workers, suffix))
        mods = ["mpm_event", "http2", "authz_core", "mime"] + ([] if cleartext else ["ssl"])
        with open(conf, "w") as f:
            f.write("".join("LoadModule %s_module %s/mod_%s.so\n" % (m, APACHE_MODULES, m) for m in mods))
            f.write("%sServerName localhost\nListen 127.0.0.1:%d\nPidFile %s/apache.pid\n"
                    "DefaultRuntimeDir %s\nMutex file:%s default\nErrorLog %s/apache-error.log\nLogLevel warn\n"
                    "DocumentRoot %s\n<Directory %s>\n  Require all granted\n</Directory>\n"
                    "TypesConfig /etc/mime.types\nEnableSendfile On\nKeepAlive On\nKeepAliveTimeout 60\n"
                    "MaxKeepAliveRequests 0\nStartServers %d\nServerLimit %d\nThreadsPerChild 64\n"
                    "MinSpareThreads 1\nMaxSpareThreads %d\nMaxRequestWorkers %d\nH2MaxSessionStreams 128\n"
                    "%s\n"
                    % ("User %s\nGroup %s\n" % (user, user) if user else "", port, work, work, work, work,
                       docroot, docroot, workers, workers, 64 * workers, 64 * workers,
                       "Protocols h2c http/1.1\nH2Direct on" if cleartext else
                       "Protocols h2 http/1.1\nSSLEngine on\nSSLCertificateFile %s/tls.pem\n"
                       "SSLCertificateKeyFile %s/tls.key\nSSLProtocol -all +TLSv1.2 +TLSv1.3\nSSLCipherSuite %s"
                       % (work, work, TLS_CIPHERS)))
        peers.append(Peer("apache", port, ["apache2", "-f", conf, "-DFOREGROUND"]))
    if shutil.which("lighttpd"):
        port = free_port()
        conf = os.path.join(work, "lighttpd-%d-%s.conf" % (workers, suffix))
        with open(conf, "w") as f:
            f.write('server.document-root = "%s"\nserver.bind = "127.0.0.1"\nserver.port = %d\n'
                    'server.max-keep-alive-requests = 1000000\nserver.max-keep-alive-idle = 60\n'
                    'server.max-fds = 20000\nserver.max-connections = 15000\nserver.max-worker = %d\n%s'
                    'server.feature-flags += ("server.h2proto" => "enable", "server.h2c" => "enable")\n%s'
                    % (docroot, port, workers if workers > 1 else 0,
                       'server.username = "%s"\nserver.groupname = "%s"\n' % (user, user) if user else "",
                       "" if cleartext else
                       'server.modules += ("mod_openssl")\nssl.engine = "enable"\nssl.pemfile = "%s/tls.pem"\n'
                       'ssl.privkey = "%s/tls.key"\nssl.openssl.ssl-conf-cmd = ("MinProtocol" => "TLSv1.2", '
                       '"CipherString" => "%s")\n' % (work, work, TLS_CIPHERS)))
        peers.append(Peer("lighttpd", port, ["lighttpd", "-D", "-f", conf]))
    return peers


def make_peers(args, work, docroot, workers, log, close, tls=False):
    user = "www-data" if os.geteuid() == 0 else None
    if tls == "proxy":
        return proxy_peers(args, work, workers, user, args.backend_port)
    if tls == "proxy-cache":
        return proxy_cache_peers(args, work, docroot, workers, user, args.backend_port)
    if tls in H2_KINDS:
        return h2_peers(args, work, docroot, workers, user, cleartext=tls == "h2c")
    if tls == "sign":
        return sign_peers(args, work, docroot, workers, user)
    if tls in COMPRESS:
        return compress_peers(args, work, docroot, workers, user, tls)
    if tls in ROUTING:
        os.makedirs(os.path.join(docroot, "l4999"), exist_ok=True)   # what the one-location peers serve
        shutil.copy(os.path.join(docroot, "1k.bin"), os.path.join(docroot, "l4999", "1k.bin"))
        return routing_peers(args, work, docroot, workers, user, tls)
    upload = tls == "upload"
    limited = tls == "limited"
    if limited:
        return limited_peers(args, work, docroot, workers, user)
    if upload:
        tls = False
        os.makedirs(os.path.join(docroot, "up"), exist_ok=True)
        os.chmod(os.path.join(docroot, "up"), 0o777)   # the servers write as their unprivileged user
    if tls:
        tls_material(work)
    peers = [httpd_peer("prefork-httpd", args.httpd, args.modules, workers, log, work, docroot, tls is True,
                        upload=upload)]
    if args.baseline:
        peers.append(httpd_peer("baseline", args.baseline, args.baseline_modules, workers, log, work, docroot,
                                tls is True, upload=upload))
    if log:
        # Logging's cost is judged in the same rounds: across groups, the machine's drift would be in it.
        peers.append(httpd_peer(OURS_LOG_OFF, args.httpd, args.modules, workers, False, work, docroot))
    if shutil.which("nginx"):
        port = free_port()
        conf = os.path.join(work, "nginx-%d-%d%s%s.conf" % (workers, log, "-tls" if tls else "",
                                                         "-upload" if upload else ""))
        tls_text = (" ssl_protocols TLSv1.2 TLSv1.3;\n ssl_ciphers %s;\n ssl_session_tickets on;\n"
                    " ssl_certificate %s/tls.pem;\n ssl_certificate_key %s/tls.key;\n" % (TLS_CIPHERS, work, work))
        with open(conf, "w") as f:
            f.write(nginx_main(user, workers, work) +
                    "http {\n %s\n sendfile on;\n tcp_nopush on;\n keepalive_requests 1000000;\n"
                    " keepalive_timeout 60;\n default_type application/octet-stream;\n%s"
                    " server { listen 127.0.0.1:%d%s; root %s;%s }\n}\n"
                    % ("access_log %s/nginx-access.log combined buffer=64k flush=1s;" % work if log
                       else "access_log off;", tls_text if tls else "", port, " ssl" if tls else "", docroot,
                       "\n  location /up/ { dav_methods PUT; client_max_body_size 0; }" if upload else ""))
        peers.append(Peer("nginx", port, ["nginx", "-c", conf, "-p", work]))
    if tls or upload:
        return peers   # TLS is measured against nginx alone
    if shutil.which("lighttpd") and not log:
        port = free_port()
        conf = os.path.join(work, "lighttpd-%d.conf" % workers)
        with open(conf, "w") as f:
            f.write('server.document-root = "%s"\nserver.bind = "127.0.0.1"\nserver.port = %d\n'
                    'server.max-keep-alive-requests = 1000000\nserver.max-keep-alive-idle = 60\n'
                    'server.max-fds = 20000\nserver.max-connections = 15000\nserver.max-worker = %d\n%s'
                    % (docroot, port, workers if workers > 1 else 0,
                       'server.username = "%s"\nserver.groupname = "%s"\n' % (user, user) if user else ""))
        peers.append(Peer("lighttpd", port, ["lighttpd", "-D", "-f", conf]))
    if shutil.which("h2o") and not log:
        peers.append(h2o_http1_peer(work, "h2o-%d" % workers, workers, user, docroot))
    if workers == 1 and not log:
        floor = os.path.join(work, "floor")
        port = free_port()
        peers.append(Peer("floor", port, [floor, str(port)] + (["close"] if close else []), floor=True))
        port = free_port()
        peers.append(Peer(CEILING, port, [floor, str(port), "spin"] + (["close"] if close else []),
                          floor=True, ceiling=True))
    return peers


def wrk(port, path, conns, duration, close, tls=False, cpus=None, host=None, coding=None, script=None):
    """Requests wrk made, and the CPU seconds wrk itself spent (from its rusage when reaped)."""
    argv = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration, "--timeout", "10s"]
    if script:   # (Lua file, its argument)
        argv += ["-s", script[0]]
    if close:
        argv += ["-H", "Connection: close"]
    if host:
        argv += ["-H", "Host: %s" % host]
    if coding:
        argv += ["-H", "Accept-Encoding: %s" % coding]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv + ["%s://127.0.0.1:%d/%s" % ("https" if tls is True else "http", port, path)]
                         + (["--", script[1]] if script else []),
                         stdout=subprocess.PIPE, preexec_fn=pinned(cpus),
                         stderr=subprocess.STDOUT, timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    text = out.stdout.decode()
    requests = re.search(r"(\d+) requests in", text)
    if out.returncode != 0 or requests is None or "Non-2xx" in text:
        raise SystemExit("wrk failed or saw errors:\n" + text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    # With Connection: close a read error is the server closing first, which is how it should end.
    if errors and (int(errors.group(1)) or int(errors.group(3)) or int(errors.group(4)) or
                   (int(errors.group(2)) and not close)):
        raise SystemExit("wrk saw socket errors:\n" + text)
    return int(requests.group(1)), client_cpu


def h2load(port, path, conns, streams, duration, tls, cpus=None):
    """Requests h2load made (all of them 2xx, or the run fails), and the CPU seconds it spent."""
    argv = ["h2load", "-t1", "-c%d" % conns, "-m%d" % streams]
    argv += ["-D", str(duration)] if duration else ["-n", str(conns * streams * 20)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv + ["%s://127.0.0.1:%d/%s" % ("https" if tls else "http", port, path)],
                         stdout=subprocess.PIPE, preexec_fn=pinned(cpus), stderr=subprocess.STDOUT,
                         timeout=(duration or 10) + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    text = out.stdout.decode()
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                  text)
    # In a timed run the status counts include answers that came after the end: only their kinds matter.
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if out.returncode != 0 or m is None or codes is None or int(m.group(5)) or int(m.group(6)) or \
            int(codes.group(1)) == 0 or sum(int(codes.group(i)) for i in (2, 3, 4)) or \
            "Application protocol: h2" not in text:
        raise SystemExit("h2load failed, saw errors or did not speak HTTP/2:\n" + text)
    return int(m.group(4)), client_cpu


def signed_wrk_script(work):
    path = os.path.join(work, "sign.lua")
    with open(path, "w") as f:
        f.write(SIGN_WRK_SCRIPT)
    return path


def warm_up(peer, tls, close, path="1k.bin", work=None):
    if tls == "sign":
        wrk(peer.port, path, 10, 1, close, script=(signed_wrk_script(work), sign_pool(peer.port, SIGN_POOL_RPS, work)))
    elif tls in H2_KINDS:
        h2load(peer.port, path, 2, 10, 0, tls == "h2")
    else:
        wrk(peer.port, path, 10, 1, close, tls, host=peer.host, coding=COMPRESS.get(tls))


def measure(peer, scenario, args):
    """req/s, the server's CPU µs per request, and wrk's: on two cores wrk's own cost per
    request is what caps req/s, and this shows how much of it each server makes wrk pay."""
    path, conns, _, close, _, tls = SCENARIOS[scenario]
    irq0 = softirq_seconds(peer.cpus) if peer.cpus else None
    cpu0, t0 = cpu_seconds(peer.proc.pid), time.monotonic()
    if tls == "sign":
        # The requests are signed before the clock starts: only the server's checking is measured.
        script = (signed_wrk_script(args.work), sign_pool(peer.port, SIGN_POOL_RPS * args.duration, args.work))
        cpu0, t0 = cpu_seconds(peer.proc.pid), time.monotonic()
        n, client = wrk(peer.port, path, conns, args.duration, close, False, CLIENT_CPUS if peer.cpus else None,
                        script=script)
    elif tls in H2_KINDS:
        n, client = h2load(peer.port, path, conns, H2_STREAMS[scenario], args.duration, tls == "h2",
                           CLIENT_CPUS if peer.cpus else None)
    else:
        n, client = wrk(peer.port, path, conns, args.duration, close, tls, CLIENT_CPUS if peer.cpus else None,
                        host=peer.host, coding=COMPRESS.get(tls))
    elapsed, cpu = time.monotonic() - t0, cpu_seconds(peer.proc.pid) - cpu0
    irq = (softirq_seconds(peer.cpus) - irq0) * 1e6 / n if peer.cpus else None
    return Sample(n / elapsed, cpu * 1e6 / n, client * 1e6 / n, client / elapsed, irq)


# What an h2c client sends for one GET /1k.bin: the preface, empty SETTINGS, and HEADERS with END_STREAM
# (:method GET and :scheme http from HPACK's static table, :path /1k.bin and :authority b as literals).
H2C_GET = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
           + b"\x00\x00\x0e\x01\x05\x00\x00\x00\x01" + b"\x82\x86\x04\x07/1k.bin\x01\x01b")


def got_answer(got, h2):
    """Whether got holds a whole answer to the 1 KiB GET (for h2: the frames, the 1 KiB DATA among them)."""
    return len(got) >= 1024 + 9 if h2 else len(got.partition(b"\r\n\r\n")[2]) >= 1024


def fresh_request_ms(port, h2=False):
    """Milliseconds for a request on a new connection, or None if none came within 10 s."""
    t0 = time.monotonic()
    got = b""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(H2C_GET if h2 else b"GET /1k.bin HTTP/1.1\r\nHost: b\r\n\r\n")
        while not got_answer(got, h2):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
    except OSError:
        return None
    return (time.monotonic() - t0) * 1000 if got_answer(got, h2) else None


def idle_10k(peer, count=10000, h2=False):
    """Bytes per idle keep-alive connection (summed RSS of the server) and a fresh request's latency.
    h2: count h2c connections, each after one request (H2C_GET) answered."""
    import selectors
    if h2:
        count = SCENARIOS["h2-idle-2k"][1]
    request = H2C_GET if h2 else b"GET /1k.bin HTTP/1.1\r\nHost: b\r\n\r\n"
    before = rss_bytes(peer.proc.pid)
    socks = []
    sel = selectors.DefaultSelector()
    try:
        for _ in range(count):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", peer.port))
            socks.append(s)
        pending = {}
        for s in socks:
            sel.register(s, selectors.EVENT_WRITE)
            pending[s] = b""
        deadline = time.monotonic() + 60
        sent = set()
        while pending and time.monotonic() < deadline:
            for key, ev in sel.select(timeout=1):
                s = key.fileobj
                if s not in sent:
                    try:
                        s.send(request)
                    except OSError:
                        continue
                    sent.add(s)
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                pending[s] += data
                if not data or got_answer(pending[s], h2):
                    sel.unregister(s)
                    del pending[s]
        if pending:
            # A server that cannot hold them all (Apache's worker threads) is reported, not fatal to the run.
            print("%s: %d of %d connections got no answer" % (peer.name, len(pending), count), flush=True)
            return None, None
        time.sleep(1)
        after = rss_bytes(peer.proc.pid)
        times = [fresh_request_ms(peer.port, h2) for _ in range(5)]
        answered = [t for t in times if t is not None]
        latency = statistics.median(answered) if len(answered) == len(times) else None
        return max(after - before, 0) / count, latency
    finally:
        for s in socks:
            s.close()
        sel.close()


def upload_1g(peer, docroot, size=1 << 30):
    """One PUT of size bytes over one connection: the growth of the server's summed RSS at its peak
    (sampled every 20 ms while the body streams), seconds, and the server's CPU seconds."""
    path = SCENARIOS["upload-1g"][0]
    target = os.path.join(docroot, path)
    os.sync()   # the last upload's dirty pages are written back before this one is timed
    before = rss_bytes(peer.proc.pid)
    peak, done = [before], threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_bytes(peer.proc.pid))
    sampler = threading.Thread(target=sample)
    sampler.start()
    piece = os.urandom(1 << 20)
    cpu0, t0 = cpu_seconds(peer.proc.pid), time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", peer.port), timeout=120)
        s.sendall(b"PUT /%s HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n" % (path.encode(), size))
        got = b""
        try:
            for _ in range(size // len(piece)):
                s.sendall(piece)
        except OSError:
            pass   # answered early (413, say): the status below says so
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
    finally:
        done.set()
        sampler.join()
    elapsed, cpu = time.monotonic() - t0, cpu_seconds(peer.proc.pid) - cpu0
    status = got.split(b" ", 2)[1] if got.startswith(b"HTTP/1.1 ") else b"none"
    stored = os.path.getsize(target) if os.path.exists(target) else -1
    if os.path.exists(target):
        os.unlink(target)
    if status not in (b"201", b"204") or stored != size:
        raise SystemExit("%s: PUT of %d bytes answered %s, stored %d" % (peer.name, size, status.decode(), stored))
    return max(peak[0] - before, 0), elapsed, cpu


def upload_text(result):
    grown, elapsed, cpu = result
    return ("1 GiB PUT, %d rounds: peak RSS +%d KiB at most (summed over the server's processes, sampled "
            "every 20 ms); median %.1f s, %.2f s of server CPU" % (UPLOAD_ROUNDS, grown // 1024, elapsed, cpu))


def keepalive_requests(port, path, total, conns):
    """total GETs of path over conns keep-alive connections, one at a time on each; returns when all are answered."""
    import selectors
    sel = selectors.DefaultSelector()
    request = ("GET /%s HTTP/1.1\r\nHost: b\r\n\r\n" % path).encode()
    left, socks = {}, []
    try:
        for i in range(conns):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setblocking(False)
            socks.append(s)
            left[s] = total // conns + (1 if i < total % conns else 0)
            s.send(request)
            sel.register(s, selectors.EVENT_READ, bytearray())
        deadline = time.monotonic() + 120
        while left and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s, got = key.fileobj, key.data
                data = s.recv(65536)
                if not data:
                    raise SystemExit("the server closed a keep-alive connection")
                got += data
                head, sep, _ = got.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if not sep or length is None or len(got) < len(head) + 4 + int(length.group(1)):
                    continue
                del got[:len(head) + 4 + int(length.group(1))]
                left[s] -= 1
                if left[s] == 0:
                    sel.unregister(s)
                    del left[s]
                else:
                    s.send(request)
        if left:
            raise SystemExit("%d connections were not answered in time" % len(left))
    finally:
        for s in socks:
            s.close()
        sel.close()


def is_traced(tid):
    """Whether a tracer is attached to thread tid (one that is gone counts as traced: nothing to wait for)."""
    try:
        with open("/proc/%d/status" % tid) as f:
            return next(int(l.split()[1]) for l in f if l.startswith("TracerPid:")) != 0
    except (OSError, StopIteration):
        return True


def syscalls_per_request(peer, total=10000, conns=50):
    """strace -c over every thread of the server while it answers total cached keep-alive requests."""
    tids = []
    for pid in tree_pids(peer.proc.pid):
        try:
            tids += [int(t) for t in os.listdir("/proc/%d/task" % pid)]
        except OSError:
            pass
    out = os.path.join(tempfile.gettempdir(), "bench-strace-%d.txt" % os.getpid())
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out] + [a for t in tids for a in ("-p", str(t))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not all(is_traced(t) for t in tids):
            if time.monotonic() > deadline or tracer.poll() is not None:
                raise SystemExit("strace could not attach to %s" % peer.name)
            time.sleep(0.05)
        keepalive_requests(peer.port, SCENARIOS["syscalls-ka-1k"][0], total, conns)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
    calls = {}
    with open(out) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 5 and fields[0][0].isdigit() and fields[3].isdigit():
                calls[fields[-1]] = int(fields[3])
    os.unlink(out)
    if "total" not in calls:
        raise SystemExit("strace printed no summary for %s" % peer.name)
    total_calls = calls.pop("total")
    return total_calls / total, busiest_text(calls, total)


def syscalls_under_load(peer, seconds=3, conns=50):
    """Syscalls per request counted in the kernel (perf's syscall tracepoints) while wrk loads the server.

    strace stops the server at every syscall, long enough for the client's next request to arrive
    before the server reads again: a read that would find nothing at full speed finds the request,
    and the count flatters.  A tracepoint counter does not change the timing."""
    pids = ",".join(str(p) for p in tree_pids(peer.proc.pid))
    url = "http://127.0.0.1:%d/%s" % (peer.port, SCENARIOS["syscalls-ka-1k"][0])
    try:
        out = subprocess.run(["perf", "stat", "-x", ",", "-e", "syscalls:sys_enter_*", "-p", pids, "--",
                              "taskset", "-c", ",".join(str(c) for c in sorted(CLIENT_CPUS or {0})),
                              "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=seconds + 120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "perf could not count: %s" % e
    requests = re.search(r"(\d+) requests in", out.stdout.decode())
    calls = {}
    for line in out.stderr.decode().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].isdigit() and fields[2].startswith("syscalls:sys_enter_"):
            calls[fields[2][len("syscalls:sys_enter_"):]] = int(fields[0])
    if out.returncode != 0 or requests is None or not calls:
        return None, "perf could not count: %s" % " ".join(out.stderr.decode().strip().splitlines()[-1:])
    total = int(requests.group(1))
    return sum(calls.values()) / total, busiest_text(calls, total)


def busiest_text(calls, total):
    """The four most frequent syscalls, each per request: "recvfrom 1.00, sendmsg 1.00, ..."."""
    busiest = sorted((n for n in calls if calls[n]), key=lambda n: -calls[n])[:4]
    return ", ".join("%s %.2f" % (n, calls[n] / total) for n in busiest)


def syscalls_text(counts):
    """A syscalls-ka-1k result (strace's count and what, perf's count and what) as one line."""
    per_req, which, loaded, loaded_which = counts
    return "%.2f syscalls per request under strace (%s); %s under wrk, counted by perf (%s)" % (
        per_req, which, "%.2f" % loaded if loaded else "–", loaded_which)


def latency_text(ms):
    return "%.2f ms" % ms if ms is not None else "no answer within 10 s"


def median_table(samples):
    """Per server: median req/s and CPU per request, the CPU range over the rounds (the noise),
    wrk's median CPU per request and share of its core, and the rounds themselves (for the ratios)."""
    return {name: Row(statistics.median(s.rps for s in v), statistics.median(s.cpu for s in v),
                      min(s.cpu for s in v), max(s.cpu for s in v),
                      statistics.median(s.client for s in v), statistics.median(s.busy for s in v),
                      statistics.median(s.softirq for s in v) if v[0].softirq is not None else None, v)
            for name, v in samples.items()}


def run_group(args, work, docroot, scenarios, workers, log, tls=False):
    results = {}
    close_variants = sorted({SCENARIOS[s][3] for s in scenarios})
    for close in close_variants:
        group = [s for s in scenarios if SCENARIOS[s][3] == close]
        peers = make_peers(args, work, docroot, workers, log, close, tls)
        try:
            for p in peers:
                p.cpus = SERVER_CPUS if workers == 1 else None   # more workers than CPUs to give: the scheduler's
                if p.ceiling:
                    continue
                p.start()
                first = SCENARIOS[group[0]][0]
                warm_up(p, tls, close, first if tls in ROUTING or tls in COMPRESS else "1k.bin", work)
            if tls in COMPRESS:
                skipped = [p for p in peers if p.name != OURS_PLAIN and not compresses(p, first, COMPRESS[tls])]
                for p in skipped:
                    print("%-12s %s does not answer in %s: left out" % (group[0], p.name, COMPRESS[tls]), flush=True)
                    p.stop()
                peers = [p for p in peers if p not in skipped]
            for scenario in group:
                if scenario in ("idle-10k", "h2-idle-2k"):
                    results[scenario] = {p.name: idle_10k(p, h2=scenario == "h2-idle-2k") if scenario == "h2-idle-2k"
                                         else idle_10k(p) for p in peers if not p.floor}
                    for name, result in results[scenario].items():
                        print("%-12s %-14s %s" % (scenario, name, idle_text(result)), flush=True)
                    continue
                if scenario == "upload-1g":
                    # Interleaved like the timed rounds: the page cache's state moves a writer's cost.
                    rounds = {p.name: [] for p in peers}
                    for _ in range(UPLOAD_ROUNDS):
                        for p in peers:
                            rounds[p.name].append(upload_1g(p, docroot))
                    results[scenario] = {name: (max(r[0] for r in v), statistics.median(r[1] for r in v),
                                                statistics.median(r[2] for r in v))
                                         for name, v in rounds.items()}
                    for name, result in results[scenario].items():
                        print("%-12s %-14s %s" % (scenario, name, upload_text(result)), flush=True)
                    continue
                if scenario == "syscalls-ka-1k":
                    results[scenario] = {p.name: syscalls_per_request(p) + syscalls_under_load(p)
                                         for p in peers if not p.ceiling}
                    for name, counts in results[scenario].items():
                        print("%-12s %-14s %s" % (scenario, name, syscalls_text(counts)), flush=True)
                    continue
                samples = {p.name: [] for p in peers if not (p.floor and scenario == "ka-1m") and
                           not (p.ceiling and scenario not in CEILING_SCENARIOS)}
                for r in range(args.rounds):
                    for p in peers:
                        if p.name not in samples:
                            continue
                        if p.ceiling:
                            p.start()
                            try:
                                sample = measure(p, scenario, args)
                            finally:
                                p.stop()
                        else:
                            sample = measure(p, scenario, args)
                        samples[p.name].append(sample)
                        print("%-12s round %d  %-14s %9.0f req/s  %7.2f us CPU/req  wrk %6.2f us/req, %3.0f%% busy%s"
                              % (scenario, r + 1, p.name, sample.rps, sample.cpu, sample.client, sample.busy * 100,
                                 "" if sample.softirq is None else ", softirq %.2f us/req" % sample.softirq),
                              flush=True)
                results[scenario] = median_table(samples)
                if tls in ROUTING:
                    ROUTING_RSS[scenario] = {p.name: rss_bytes(p.proc.pid, workers_only=True)
                                             for p in peers if p.proc is not None}
                    print("%-12s RSS %s" % (scenario, ", ".join("%s %.1f MB" % (n, v / 1e6)
                                                                for n, v in ROUTING_RSS[scenario].items())), flush=True)
        finally:
            for p in peers:
                p.stop()
    return results


def cpu_and_softirq(sample):
    return sample.cpu + sample.softirq


def round_ratio(table, server, others, field, best):
    """The median over rounds of server's figure (field "rps", "cpu", or a function of a Sample) to the
    best of others' in the same round.  A round runs every server back to back, so the machine's drift
    between rounds (up to 40% here) stays out of the ratio; a ratio of two medians can pair a fast round
    with a slow one."""
    figure = field if callable(field) else lambda sample: getattr(sample, field)
    rounds = table[server].rounds
    return statistics.median(figure(rounds[i]) / best(figure(table[k].rounds[i]) for k in others)
                             for i in range(len(rounds)))


def ratios(table):
    peers = [k for k in table if k not in OURS + ("floor", CEILING)]
    out = {}
    if peers:
        out["best_rps"] = round_ratio(table, "prefork-httpd", peers, "rps", max)
        out["best_cpu"] = round_ratio(table, "prefork-httpd", peers, "cpu", min)
        if table["prefork-httpd"].softirq is not None:
            out["best_cpu_softirq"] = round_ratio(table, "prefork-httpd", peers, cpu_and_softirq, min)
    if "floor" in table:
        out["floor_rps"] = round_ratio(table, "prefork-httpd", ["floor"], "rps", max)
        out["floor_cpu"] = round_ratio(table, "prefork-httpd", ["floor"], "cpu", min)
    if CEILING in table and peers:
        out["ceiling_rps"] = round_ratio(table, CEILING, peers, "rps", max)
    if "baseline" in table:
        out["base_rps"] = round_ratio(table, "prefork-httpd", ["baseline"], "rps", max)
        out["base_cpu"] = round_ratio(table, "prefork-httpd", ["baseline"], "cpu", min)
    return out


def idle_text(result):
    per_conn, ms = result
    if per_conn is None:
        return "could not hold the connections open"
    return "%.0f B per idle connection, fresh request: %s" % (per_conn, latency_text(ms))


# Scenarios counted once per server rather than timed: their rows carry only a note.
COUNTED_TEXT = {"idle-10k": idle_text, "syscalls-ka-1k": syscalls_text, "upload-1g": upload_text,
                "h2-idle-2k": idle_text}
TABLE_HEAD = ("scenario", "server", "req/s", "CPU µs/req", "CPU over rounds", "softirq µs/req",
              "wrk CPU µs/req (busy)", "note")


def markdown(results, args):
    lines = ["| %s |" % " | ".join(TABLE_HEAD), "|---|---|" + "---:|" * (len(TABLE_HEAD) - 3) + "---|"]
    for scenario, table in results.items():
        if scenario in COUNTED_TEXT:
            dashes = " | ".join(["–"] * (len(TABLE_HEAD) - 3))
            for name, result in table.items():
                lines.append("| %s | %s | %s | %s |" % (scenario, name, dashes, COUNTED_TEXT[scenario](result)))
            continue
        r = ratios(table)
        for name, row in table.items():
            note = ""
            if name == CEILING:
                note = "the floor never sleeping: the most req/s wrk reaches here; its CPU is a whole core"
            if name == "prefork-httpd":
                parts = []
                if "best_rps" in r:
                    parts.append("%.2f× best peer req/s, %.2f× best peer CPU" % (r["best_rps"], r["best_cpu"]))
                if "best_cpu_softirq" in r:
                    parts.append("%.2f× best peer CPU with softirq" % r["best_cpu_softirq"])
                if "floor_cpu" in r:
                    parts.append("%.2f× floor CPU" % r["floor_cpu"])
                if "ceiling_rps" in r:
                    parts.append("wrk's ceiling %.2f× best peer req/s" % r["ceiling_rps"])
                if "base_cpu" in r:
                    parts.append("%.2f× baseline req/s, %.2f× baseline CPU" % (r["base_rps"], r["base_cpu"]))
                note = "; ".join(parts)
            lines.append("| %s | %s | %.0f | %.2f | %.2f–%.2f | %s | %.2f (%.0f%%) | %s |"
                         % (scenario, name, row.rps, row.cpu, row.cpu_min, row.cpu_max,
                            "–" if row.softirq is None else "%.2f" % row.softirq, row.client, row.busy * 100, note))
    if "ka-1k-log" in results:
        log = results["ka-1k-log"]
        lines.append("")
        lines.append("ka-1k-log, prefork-httpd: CPU per request with the access log on / off, in the same rounds: %.2f×"
                     % round_ratio(log, "prefork-httpd", [OURS_LOG_OFF], "cpu", min))
    if "ka-1k-limited" in results:
        lim = results["ka-1k-limited"]
        lines.append("")
        lines.append("ka-1k-limited, prefork-httpd: CPU per request with a limit_req zone / without, in the same "
                     "rounds: %.2f×" % round_ratio(lim, "prefork-httpd", [OURS_UNLIMITED], "cpu", min))
    if "ka-1k-br" in results and OURS_PLAIN in results["ka-1k-br"]:
        lines.append("")
        lines.append("ka-1k-br, prefork-httpd: CPU per request compressed with br (a cached copy) / uncompressed, "
                     "in the same rounds: %.2f×" % round_ratio(results["ka-1k-br"], "prefork-httpd", [OURS_PLAIN],
                                                              "cpu", min))
    if "proxy-cache-hit-1k" in results and OURS_STATIC in results["proxy-cache-hit-1k"]:
        lines.append("")
        lines.append("proxy-cache-hit-1k, prefork-httpd: CPU per request of a cache hit / the same 1 KiB from the "
                     "static module, in the same rounds: %.2f×" % round_ratio(results["proxy-cache-hit-1k"],
                                                                            "prefork-httpd", [OURS_STATIC], "cpu", min))
    if "sign-rfc9421" in results and OURS_REDIS in results["sign-rfc9421"]:
        lines.append("")
        lines.append("sign-rfc9421: CPU per signed request with the nonce store in Redis / in shared memory, in the "
                     "same rounds: %.2f×" % round_ratio(results["sign-rfc9421"], OURS_REDIS, ["prefork-httpd"],
                                                        "cpu", min))
    for scenario in ("vhosts-5k", "locations-5k", "rewrite-1k"):
        if scenario not in results:
            continue
        kind = SCENARIOS[scenario][5]
        lines.append("")
        text = ("%s, prefork-httpd: CPU per request with %d %s / with one, in the same rounds: %.2f×"
                % (scenario, ROUTING_BLOCKS[kind], {"vhosts": "server blocks", "locations": "locations",
                                                   "rewrites": "rewrite rules"}[kind],
                   round_ratio(results[scenario], "prefork-httpd", [OURS_ONE], "cpu", min)))
        rss = ROUTING_RSS.get(scenario, {})
        if "prefork-httpd" in rss and OURS_ONE in rss:
            text += "; memory per %s: %.1f KB (the worker's RSS)" % (
                {"vhosts": "server block", "locations": "location", "rewrites": "rule"}[kind],
                (rss["prefork-httpd"] - rss[OURS_ONE]) / ROUTING_BLOCKS[kind] / 1024)
        lines.append(text)
    return "\n".join(lines) + "\n"


def svg(results):
    """CPU µs per request, one bar group per scenario: lower is better."""
    names = []
    for table in results.values():
        for name in table:
            if name not in names and name != CEILING:   # its CPU per request is a busy core's
                names.append(name)
    colours = ["#d62728", "#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
    scen = [s for s in results if s not in COUNTED]
    width, height, left, bottom = 160 * max(len(scen), 1) + 120, 360, 60, 300
    top = max((row.cpu for s in scen for row in results[s].values()), default=1) * 1.1
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'
           % (width, height),
           '<text x="%d" y="16" font-size="13">CPU µs per request (lower is better)</text>' % left]
    for i, s in enumerate(scen):
        x0 = left + i * 160
        bars = [n for n in names if n in results[s]]
        for j, n in enumerate(bars):
            v = results[s][n].cpu
            h = (bottom - 30) * v / top
            out.append('<rect x="%d" y="%.1f" width="18" height="%.1f" fill="%s"><title>%s %s: %.2f</title></rect>'
                       % (x0 + j * 22, bottom - h, h, colours[names.index(n) % len(colours)], s, n, v))
        out.append('<text x="%d" y="%d">%s</text>' % (x0, bottom + 16, s))
    for k, n in enumerate(names):
        out.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>'
                   % (left + k * 120, bottom + 30, colours[k % len(colours)], left + k * 120 + 14, bottom + 39, n))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def versions():
    def first_line(argv):
        try:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            return p.stdout.decode(errors="replace").strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not found"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    # Page-table isolation (Meltdown's mitigation) makes every syscall dearer, and these figures are mostly
    # syscalls: wrk took 7.7 us per ka-1k request on a machine without it, 12.8 us on one with it.
    try:
        with open("/sys/devices/system/cpu/vulnerabilities/meltdown") as f:
            meltdown = f.read().strip()
    except OSError:
        meltdown = "unknown"
    return [("machine", "%s, %d cores, Linux %s, Meltdown: %s"
             % (cpu, os.cpu_count() or 0, platform.release(), meltdown)),
            ("nginx", first_line(["nginx", "-v"])), ("lighttpd", first_line(["lighttpd", "-v"])),
            ("h2o", first_line(["h2o", "--version"])), ("apache", first_line(["apache2", "-v"])),
            ("wrk", first_line(["wrk", "-v"])), ("h2load", first_line(["h2load", "--version"]))]


def tools_install(tools=None):
    """Installs from Debian the packages of the tools (command: package) not on PATH."""
    missing = sorted({pkg for tool, pkg in (tools or DEBIAN_TOOLS).items()
                      if not (os.path.exists(tool) if tool.startswith("/") else shutil.which(tool))})
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("bench: installing %s from Debian" % " ".join(missing), flush=True)
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=False)
    subprocess.run(sudo + ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq",
                           "--no-install-recommends"] + missing, check=True)
    for unit in ("nginx", "lighttpd", "h2o", "apache2"):   # the packages start system services: not ours to run
        subprocess.run(sudo + ["systemctl", "stop", unit], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--httpd", default=os.path.join(TOP, "build/src/httpd"))
    ap.add_argument("--modules", default=os.path.join(TOP, "build/modules/.libs"))
    ap.add_argument("--baseline", help="another prefork-httpd binary to compare with (e.g. main)")
    ap.add_argument("--baseline-modules", help="its module directory")
    # One round in seven or so catches a slow spell of the machine (a server's CPU per request 1.5x its
    # usual for the whole 5 s, wrk's with it); the median of 7 rounds' ratios rides over two such.
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help="comma-separated subset of: " + ", ".join(SCENARIOS))
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument("--no-pin", action="store_true",
                    help="let the scheduler place servers and wrk (default: one-worker servers on the last CPU, "
                         "wrk on CPU 0)")
    args = ap.parse_args()
    global CLIENT_CPUS, SERVER_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    if not args.no_pin and len(cpus) >= 2:
        CLIENT_CPUS, SERVER_CPUS = set(cpus[:-1]), {cpus[-1]}
    scenarios = [s for s in args.scenarios.split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            raise SystemExit("unknown scenario %s" % s)
    if not args.no_install:
        tools_install()
    if not os.path.exists(args.httpd):
        raise SystemExit("%s not built: run ./dev.sh check (or make) first" % args.httpd)

    work = tempfile.mkdtemp(prefix="httpd-bench-")
    args.work = work
    os.chmod(work, 0o755)
    docroot = os.path.join(work, "www")
    os.mkdir(docroot)
    os.chmod(docroot, 0o755)
    for name, size in (("1k.bin", 1024), ("1m.bin", 1 << 20)):
        with open(os.path.join(docroot, name), "wb") as f:
            f.write(os.urandom(size))
        os.chmod(os.path.join(docroot, name), 0o644)
    # Text for the compression scenarios: this file's own source, repeated, as compressible as a page.
    with open(os.path.abspath(__file__), "rb") as f:
        source = f.read()
    for name, size in (("1k.txt", 1024), ("100k.txt", 100 * 1024)):
        with open(os.path.join(docroot, name), "wb") as f:
            f.write((source * (size // len(source) + 1))[:size])
        os.chmod(os.path.join(docroot, name), 0o644)
    subprocess.run(["cc", "-O2", "-o", os.path.join(work, "floor"), os.path.join(HERE, "floor.c")], check=True)

    results = {}
    try:
        groups = {}
        for s in scenarios:
            groups.setdefault((SCENARIOS[s][2], SCENARIOS[s][4], SCENARIOS[s][5]), []).append(s)
        for (workers, log, tls), group in groups.items():
            backend = None
            if tls in ("proxy", "proxy-cache"):
                # The floor responder as the application: what a backend costs is not counted.
                args.backend_port = free_port()
                backend = Peer("backend", args.backend_port, [os.path.join(work, "floor"), str(args.backend_port)]
                               + (["cacheable"] if tls == "proxy-cache" else []), floor=True)
                backend.cpus = CLIENT_CPUS   # the application's cost is on the load's side, not the proxy's
                backend.start()
            try:
                results.update(run_group(args, work, docroot, group, workers, log, tls))
            finally:
                if backend is not None:
                    backend.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {s: results[s] for s in scenarios if s in results}

    table = markdown(results, args)
    print()
    print("%d interleaved rounds of %d s, wrk -t1, median round; ratios: median of the rounds' own"
          % (args.rounds, args.duration))
    print(table)
    results_dir = os.path.join(HERE, "results")
    os.makedirs(results_dir, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = ("Run %s: %d interleaved rounds of %d s each, `wrk -t1`, median round. Each ratio is the median "
              "over rounds of the ratio within a round, where the servers ran back to back: the machine's "
              "speed drifts between rounds. The wrk column is the client's own CPU per request and its share "
              "of its core: at 99%% busy, req/s is what wrk can do, and `ceiling` (the floor that never "
              "sleeps) is the most it does here. CPU is the server's utime+stime; softirq is the softirq time "
              "of the pinned server's CPU over the round, per request (mostly the loopback delivery of the "
              "server's own sends, which the kernel accounts to no task), shown apart so CPU keeps the "
              "issue's meaning.\n\n" % (stamp, args.rounds, args.duration))
    if SERVER_CPUS:
        header += ("One-worker servers pinned to CPU %s, wrk (and the proxy scenario's backend) to CPU %s: "
                   "left to the scheduler, the CPU a server landed on moved its CPU per request by 20%%. "
                   "`workers-2` is not pinned. `--no-pin` turns this off.\n\n"
                   % (",".join(map(str, sorted(SERVER_CPUS))), ",".join(map(str, sorted(CLIENT_CPUS)))))
    header += "".join("- %s: %s\n" % kv for kv in versions()) + "\n"
    with open(os.path.join(results_dir, "latest.md"), "w") as f:
        f.write(header + table)
    with open(os.path.join(results_dir, "latest.svg"), "w") as f:
        f.write(svg(results))
    if not args.no_docs:
        with open(os.path.join(TOP, "docs", "benchmarks.md"), "w") as f:
            f.write("# Benchmarks\n\nWritten by `bench/run.py` (see its `--help`); the plot is "
                    "`bench/results/latest.svg`.  Ratios matter, absolute figures move ±20% between runs on "
                    "a shared machine.  The floor is `bench/floor.c`, an epoll loop that answers every read "
                    "with a fixed 1 KiB response.\n\n" + header + table)
    print("wrote bench/results/latest.md, bench/results/latest.svg%s"
          % ("" if args.no_docs else " and docs/benchmarks.md"))


if __name__ == "__main__":
    main()
