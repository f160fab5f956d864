"""Starts the built httpd on loopback with a generated config; raw-socket helpers; a TAP runner."""
import contextlib
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HTTPD = os.environ.get("HTTPD_BIN", "src/httpd")
MODULE_DIR = os.environ.get("HTTPD_MODULE_DIR", "modules/.libs")
TEST_MODULE_DIR = os.environ.get("HTTPD_TEST_MODULE_DIR", "t/modules/.libs")
IS_ROOT = os.geteuid() == 0


def ephemeral_ports():
    """The kernel's range for the local ports of outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port nothing uses now, for a server to listen on, chosen at random outside the ephemeral
    range.  A port from bind(port 0) lies inside that range, where any connection made meanwhile
    (tests run two at a time, beside other CI steps) may take it as its local port before the
    server binds it: CI once failed with 'cannot bind 0.0.0.0:59687: Address already in use'.
    The wildcard is tried too, since a server on it conflicts with a socket on any address."""
    low, high = ephemeral_ports()
    pool = [p for p in range(10000, 65536) if not low <= p <= high]
    wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
    for _ in range(1000):
        port = random.choice(pool) if pool else 0
        try:
            for address in dict.fromkeys((host, wildcard)):
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.bind((address, port))
                    port = s.getsockname()[1]
            return port
        except OSError:
            continue
    raise RuntimeError("no free port outside the ephemeral range %d-%d" % (low, high))


def seccomp_refuse_openat2(errno_value=38):
    """For Server.preexec: a seccomp filter that fails openat2(2) with ENOSYS (or errno_value),
    as a kernel before 5.6 or a container's seccomp profile that does not know it does.
    Syscall 437 is openat2 on every architecture's table since Linux 5.6."""
    import ctypes

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    bpf_ld_w_abs, bpf_jeq_k, bpf_ret_k = 0x20, 0x15, 0x06
    seccomp_ret_errno, seccomp_ret_allow = 0x00050000, 0x7fff0000
    program = (SockFilter * 4)(
        SockFilter(bpf_ld_w_abs, 0, 0, 0),                          # the syscall number
        SockFilter(bpf_jeq_k, 0, 1, 437),                           # openat2?
        SockFilter(bpf_ret_k, 0, 0, seccomp_ret_errno | errno_value),
        SockFilter(bpf_ret_k, 0, 0, seccomp_ret_allow))
    prog = SockFprog(len(program), program)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0 or \
            libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter")


def wait_for(pred, timeout=10.0, step=0.02):
    """Polls pred until it is true or timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


class Server:
    """One daemon under test, in its own temporary directory."""

    def __init__(self, locations=None, globals_text="", workers=1, listen=None, module_dir=None):
        self.dir = tempfile.mkdtemp(prefix="httpd-test-")
        os.chmod(self.dir, 0o755)
        self.root = os.path.join(self.dir, "www")
        os.mkdir(self.root)
        os.chmod(self.root, 0o755)
        self.port = free_port()
        self.listen = listen or ['127.0.0.1:%d' % self.port]
        self.workers = workers
        self.globals_text = globals_text
        self.module_dir = module_dir or MODULE_DIR
        self.locations = locations if locations is not None else \
            'location "/" {\n  handler = "static"\n  root = "%s"\n}\n' % self.root
        self.conf = os.path.join(self.dir, "httpd.conf")
        self.pid_file = os.path.join(self.dir, "httpd.pid")
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.proc = None
        self.preexec = None   # run in the daemon's process before exec (seccomp_refuse_openat2, say)
        self.write_config()

    def config_text(self):
        return (
            "listen = {%s}\n" % ", ".join('"%s"' % l for l in self.listen)
            + "workers = %s\n" % self.workers
            + 'user = "%s"\n' % ("www-data" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name)
            + 'pid_file = "%s"\n' % self.pid_file
            + 'error_log = "%s"\n' % self.error_log
            + 'access_log = "%s"\n' % self.access_log
            + 'module_dir = "%s"\n' % self.module_dir
            + self.globals_text + "\n"
            + self.locations
        )

    def write_config(self, text=None):
        with open(self.conf, "w") as f:
            f.write(text if text is not None else self.config_text())

    def file(self, rel, data, mode=0o644):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.chmod(path, mode)
        return path

    def start(self, foreground=True, expect_ok=True):
        args = [HTTPD, "-f", self.conf] + (["-F"] if foreground else [])
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.stderr_file,
                                     stderr=self.stderr_file, start_new_session=True, preexec_fn=self.preexec)
        if not foreground:
            self.proc.wait(timeout=10)
        if expect_ok and not wait_for(self.answering, timeout=10):
            raise AssertionError("httpd did not start:\n" + self.stderr() + self.log())
        if expect_ok and isinstance(self.workers, int):
            # The port answers once the master listens, before its workers are forked (under
            # ASan a test read no worker at all): a test that looks at the workers needs them.
            wait_for(lambda: self.workers_running() >= self.workers, timeout=10)
        return self

    def workers_running(self):
        """How many workers the master has now; 0 before its pid file is there."""
        try:
            return len(self.worker_pids())
        except (OSError, ValueError):
            return 0

    def answering(self):
        try:
            host, port = self.address()
            socket.create_connection((host, port), timeout=1).close()
            return os.path.exists(self.pid_file)
        except OSError:
            return False

    def address(self, index=0):
        text = self.listen[index]
        host, port = text.rsplit(":", 1)
        return host.strip("[]"), int(port)

    def master_pid(self):
        with open(self.pid_file) as f:
            return int(f.read())

    def worker_pids(self):
        master = self.master_pid()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == master and fields[0] != "Z":
                    pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
        return sorted(pids)

    def signal(self, sig):
        os.kill(self.master_pid(), sig)

    def stop(self):
        if self.proc is None:
            return
        try:
            if os.path.exists(self.pid_file):
                os.kill(self.master_pid(), signal.SIGTERM)
            else:
                self.proc.terminate()
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired, ValueError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.stderr_file.close()
        self.proc = None

    def cleanup(self):
        self.stop()
        report = self.stderr()
        shutil.rmtree(self.dir, ignore_errors=True)
        # Under ASan/UBSan a crashing worker is just respawned: make its report a failure.
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            if marker in report:
                raise AssertionError("sanitizer report from httpd:\n" + report)

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except (OSError, AttributeError):
            return ""

    def log(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def connect(self, index=0, timeout=5):
        host, port = self.address(index)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((host, port))
        return s

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)


class Response:
    def __init__(self, status, reason, headers, body, raw):
        self.status = status
        self.reason = reason
        self.headers = headers      # list of (name, value) in order
        self.body = body
        self.raw = raw

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.raw[:300])


class Reader:
    """Reads HTTP/1.1 responses off a socket, exactly as framed."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head_request=False):
        raw_start = len(self.buf)
        status_line = self._line()
        version, status, reason = status_line.decode("latin-1").split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            name, value = line.decode("latin-1").split(":", 1)
            headers.append((name, value.strip()))
        status = int(status)
        resp = Response(status, reason, headers, b"", status_line)
        if status < 200 and status != 101:
            return resp
        if head_request or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te is not None:
            assert te.lower() == "chunked", te
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                assert self._exact(2) == b"\r\n"
            resp.body = body
        elif cl is not None:
            resp.body = self._exact(int(cl))
        else:
            while True:
                try:
                    self._more()
                except EOFError:
                    break
            resp.body, self.buf = self.buf, b""
        del raw_start
        return resp

    def closed(self, timeout=5):
        """True if the server closes the connection (with nothing more sent)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return data == b"" and not self.buf


def helper_output(log):
    """What a helper (haproxy, dnsmasq) wrote to its log so far."""
    log.flush()
    with open(log.name, errors="replace") as f:
        return f.read()


def helper_stop(proc, log, directory):
    """Ends a helper a test started (haproxy, dnsmasq): TERM, KILL after 10 s; its log and directory go."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    shutil.rmtree(directory, ignore_errors=True)


def recv_all(sock):
    """Every byte until the peer closes."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def exchange(server, raw, head_request=False, count=1):
    """Sends raw bytes on a new connection; returns (responses, reader)."""
    s = server.connect()
    s.sendall(raw)
    reader = Reader(s)
    responses = [reader.response(head_request=head_request) for _ in range(count)]
    return (responses[0] if count == 1 else responses), reader


def get(server, path="/", headers="", version="1.1"):
    raw = "GET %s HTTP/%s\r\nHost: test\r\n%s\r\n" % (path, version, headers)
    resp, reader = exchange(server, raw.encode("latin-1"))
    reader.sock.close()
    return resp


def run(namespace):
    """Runs every test_* function in namespace, printing TAP."""
    only = os.environ.get("HTTPD_TEST_ONLY")   # a developer's filter: tests whose name contains it
    tests = [(n, f) for n, f in sorted(namespace.items())
             if n.startswith("test_") and callable(f) and (not only or only in n)]
    print("1..%d" % len(tests))
    failed = 0
    for i, (name, fn) in enumerate(tests, 1):
        try:
            fn()
            print("ok %d - %s" % (i, name))
        except Exception:  # noqa: BLE001 - every failure is reported, then the next test runs
            failed += 1
            print("not ok %d - %s" % (i, name))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
        sys.stdout.flush()
    teardown = namespace.get("teardown_module")
    if teardown:
        teardown()
    return 1 if failed else 0


def config_check(srv, text):
    """httpd -t on text as srv's configuration: (exit status, stderr)."""
    srv.write_config(text)
    proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return proc.returncode, proc.stderr.decode(errors="replace")


def config_error_at(srv, text, needle, message):
    """text fails httpd -t with message at the line that holds needle (a whole line of text)."""
    rc, err = config_check(srv, text)
    want = "%s:%d: " % (srv.conf, text.split("\n").index(needle) + 1)
    assert rc == 1 and want in err and message in err, (needle, message, err)


def module_dir_with_tests(directory):
    """A module directory holding the bundled modules and the test-only ones."""
    target = os.path.join(directory, "modules")
    os.makedirs(target, exist_ok=True)
    for source in (MODULE_DIR, TEST_MODULE_DIR):
        for name in os.listdir(source):
            if name.endswith(".so") and not os.path.exists(os.path.join(target, name)):
                os.symlink(os.path.join(os.path.abspath(source), name), os.path.join(target, name))
    return target


@contextlib.contextmanager
def preloaded(shim, **env):
    """Servers started inside run with the test-only LD_PRELOAD shim (t/modules/SHIM.so) and env set."""
    path = os.path.join(os.path.abspath(TEST_MODULE_DIR), shim + ".so")
    assert os.path.exists(path), path
    env = dict(env, LD_PRELOAD=path,
               # under AddressSanitizer the shim comes before its runtime, which is fine for a recv wrapper
               ASAN_OPTIONS=":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"])))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def keepalive_load(port, path, expected, stop, results, bound):
    """GETs path over one keep-alive connection until stop is set (at most bound requests),
    checking every body byte for byte and retrying nothing: a response that is not a whole
    200 or an exception counts as failed.  results: ok, failed, closed, why, servers."""
    import http.client
    conn = None
    for _ in range(bound):
        if stop.is_set():
            break
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200 and body == expected:
                results["ok"] += 1
                results.setdefault("servers", set()).add(resp.getheader("Server"))
            else:
                results["failed"] += 1
                results["why"].append("status %d, %d bytes" % (resp.status, len(body)))
            if resp.will_close:
                results["closed"] = results.get("closed", 0) + 1
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            results["failed"] += 1
            results["why"].append(repr(e))
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


class KeepaliveLoad:
    """connections threads of keepalive_load on port while the with-block runs, after lead seconds
    of load; on exit they stop and the totals are ok, failed, closed, why and results (per thread)."""

    def __init__(self, port, path, expected, connections, bound=50000, lead=0.5):
        import threading
        self.stop = threading.Event()
        self.results = [{"ok": 0, "failed": 0, "closed": 0, "why": [], "servers": set()}
                        for _ in range(connections)]
        self.threads = [threading.Thread(target=keepalive_load, args=(port, path, expected, self.stop, r, bound))
                        for r in self.results]
        self.lead = lead

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(self.lead)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        self.ok = sum(r["ok"] for r in self.results)
        self.failed = sum(r["failed"] for r in self.results)
        self.closed = sum(r["closed"] for r in self.results)
        self.why = [w for r in self.results for w in r["why"]][:5]
        return False


def curl(*args):
    """Runs curl; returns (exit status, stdout bytes, stderr text)."""
    proc = subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")


if __name__ == "__main__":
    # For shell scripts (.ci/): `python3 t/integration/harness.py free-port`
    if sys.argv[1:] == ["free-port"]:
        print(free_port())
    else:
        sys.exit("usage: harness.py free-port")
