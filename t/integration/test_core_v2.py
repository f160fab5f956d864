"""Core v2 over real sockets: phases, checks before the body, streamed bodies,
asynchronous handlers, the thread pool, filters, notes, ABI 2 hooks and options."""
import gzip
import os
import socket
import subprocess

from harness import (HTTPD, Reader, Server, ephemeral_ports, exchange, free_port, get, module_dir_with_tests, run,
                     wait_for)

SERVER = None


def scratch_dir(srv):
    path = os.path.join(srv.dir, "scratch")
    if not os.path.isdir(path):
        os.mkdir(path)
        os.chmod(path, 0o777)
    return path


def server():
    global SERVER
    if SERVER is None:
        SERVER = Server(workers=1)
        SERVER.module_dir = module_dir_with_tests(SERVER.dir)
        scratch = scratch_dir(SERVER)
        up = os.path.join(SERVER.dir, "up")
        os.mkdir(up)
        os.chmod(up, 0o777)
        SERVER.scratch, SERVER.up = scratch, up
        SERVER.globals_text = (
            'temp_dir = "%s"\nmax_body_size = "2g"\nbody_buffer_size = "16k"\n'
            'testmod_store { entries = 42 }\n' % scratch)
        SERVER.locations = (
            'location "/" { handler = "static" root = "%s" }\n'
            'location "/docs" { handler = "static" root = "%s/docs" }\n'
            'location "/t/" { handler = "testmod" filter_tag = "v2" log_file = "%s/hook.log"\n'
            '   cancel_log = "%s/cancel.log"\n'
            '   key "app-1" { secret = "s1" }\n   key "app-2" { secret = "s2" } }\n'
            'location "/guarded/" { handler = "testmod" check = {"testmod"} deny_body = "evil" }\n'
            'location "/echo" { handler = "echo" gzip = true gzip_min_length = "10" }\n'
            'location "/up/" { handler = "static" root = "%s" writable = true }\n'
            % (SERVER.root, SERVER.root, scratch, scratch, up))
        SERVER.write_config()
        SERVER.file("a.txt", b"AAAA")
        SERVER.file("docs/index.html", b"docs index")
        SERVER.file("ecret", b"must never be served for /docsecret")
        SERVER.start()
    return SERVER


def teardown_module():
    if SERVER is not None:
        SERVER.cleanup()


def worker_pid(srv):
    assert wait_for(lambda: len(srv.worker_pids()) == 1), srv.worker_pids()
    return srv.worker_pids()[0]


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def holds(pid, path):
    """Does process pid have path open?"""
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == path:
                return True
        except OSError:
            pass
    return False


def vm_kib(pid, field):
    """A memory figure of process pid from /proc/PID/status, in KiB: "VmHWM" (peak RSS), "VmRSS"."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s" % field)


def fifo(name):
    path = os.path.join(server().scratch, name)
    if os.path.exists(path):
        os.unlink(path)
    os.mkfifo(path)
    os.chmod(path, 0o666)
    return path


def fifo_write(path, data):
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, data)
    os.close(fd)


# --- routing ---------------------------------------------------------------------

def test_location_prefix_matches_on_segment_boundary():
    assert get(server(), "/docs/").body == b"docs index"
    assert get(server(), "/docs").body == b"docs index"   # the prefix itself
    r = get(server(), "/docsecret")
    # "/docs" must not claim /docsecret: it falls to "/" and is simply not there.
    assert r.status == 404, r
    assert b"must never" not in r.body


# --- check phase before the body ---------------------------------------------------

def test_check_refuses_large_post_before_body_no_100_continue():
    s = server().connect()
    s.sendall(b"POST /guarded/x HTTP/1.1\r\nHost: t\r\nX-Deny: 1\r\nExpect: 100-continue\r\n"
              b"Content-Length: 5242880\r\n\r\n")
    reader = Reader(s)
    r = reader.response()
    assert r.status == 403, r
    assert b"100 Continue" not in r.raw
    assert r.header("Connection") == "close"
    assert reader.closed(), "the unread body means the connection must close"
    s.close()


def test_check_refuses_before_body_without_expect():
    # The client sends only the head; the refusal must come without waiting for 5 MB.
    s = server().connect(timeout=5)
    s.sendall(b"PUT /guarded/x HTTP/1.1\r\nHost: t\r\nX-Deny: 1\r\nContent-Length: 5242880\r\n\r\n")
    r = Reader(s).response()
    assert r.status == 405 or r.status == 403, r
    s.close()


def test_100_continue_only_after_checks_pass():
    s = server().connect()
    s.sendall(b"POST /guarded/body HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
              b"Content-Length: 5\r\n\r\n")
    reader = Reader(s)
    interim = reader.response()
    assert interim.status == 100, interim
    s.sendall(b"hello")
    r = reader.response()
    assert r.status == 200 and r.body == b"hello", r
    s.close()


def test_401_keeps_module_www_authenticate():
    r = get(server(), "/guarded/x", headers="X-Auth: 1\r\n")
    assert r.status == 401, r
    assert r.header("WWW-Authenticate") == 'Signature realm="test"', r.headers
    assert r.header("Content-Type").startswith("text/html")


def test_check_note_reaches_handler():
    assert get(server(), "/guarded/note").body == b"note: passed\n"
    assert get(server(), "/t/note").body == b"note: -\n"


def test_body_check_refuses_streaming_body():
    body = b"x" * 50000 + b"evil" + b"y" * 50000
    raw = b"POST /guarded/body HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    r, reader = exchange(server(), raw)
    assert r.status == 403, r
    reader.sock.close()
    raw = b"POST /guarded/body HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\ngood bytes"
    r, reader = exchange(server(), raw)
    assert r.status == 200 and r.body == b"good bytes", r
    reader.sock.close()


# --- streamed bodies ------------------------------------------------------------------

def test_large_body_spills_to_unlinked_file_and_arrives_intact():
    body = os.urandom(300000)
    raw = b"POST /t/body HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    r, reader = exchange(server(), raw)
    assert r.status == 200 and r.body == body
    reader.sock.close()
    leftovers = [n for n in os.listdir(server().scratch) if not n.endswith(".log") and n != "f"]
    assert all(not n.startswith("#") and not n.startswith("tmp") for n in leftovers), leftovers


def test_large_chunked_body_spills_and_arrives_intact():
    body = os.urandom(100000)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7000]), body[i:i + 7000])
                      for i in range(0, len(body), 7000))
    raw = b"POST /t/body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    r, reader = exchange(server(), raw)
    assert r.status == 200 and r.body == body
    reader.sock.close()


def test_echo_reads_a_spilled_body():
    body = b"e" * 40000
    raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    r, reader = exchange(server(), raw)
    assert r.status == 200 and r.body.endswith(body)
    reader.sock.close()


def put_in_pieces(srv, name, size):
    """PUTs size random bytes to /up/name, sent 1 MiB at a time: the response, and the repeated MiB."""
    piece = os.urandom(1 << 20)
    s = srv.connect(timeout=120)
    s.sendall(b"PUT /up/%s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (name.encode(), size))
    for _ in range(size // len(piece)):
        s.sendall(piece)
    r = Reader(s).response()
    s.close()
    return r, piece


def test_put_1gib_streams_with_flat_worker_memory():
    srv = server()
    pid = worker_pid(srv)
    size = 1 << 30
    r, piece = put_in_pieces(srv, "huge.bin", size)
    assert r.status == 201, r
    assert os.path.getsize(os.path.join(srv.up, "huge.bin")) == size
    with open(os.path.join(srv.up, "huge.bin"), "rb") as f:
        assert f.read(len(piece)) == piece
        f.seek(size - len(piece))
        assert f.read() == piece
    hwm = vm_kib(pid, "VmHWM")
    os.unlink(os.path.join(srv.up, "huge.bin"))
    assert hwm < 64 * 1024, "worker peak RSS %d KiB for a 1 GiB upload" % hwm
    assert not [n for n in os.listdir(srv.up) if n.startswith(".upload-")]


def write_syscalls(pid):
    """The write(2)-family calls process pid has made (/proc/PID/io syscw; socket sends are not in it)."""
    with open("/proc/%d/io" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("syscw:"))


def test_long_upload_is_written_in_large_turns():
    # Read through the 4 KiB head buffer, 16 MiB took 4,096 reads and 4,096 file writes.
    srv = server()
    pid = worker_pid(srv)
    size = 16 << 20
    before = write_syscalls(pid)
    r, _ = put_in_pieces(srv, "turns.bin", size)
    writes = write_syscalls(pid) - before
    assert r.status == 201, r
    assert os.path.getsize(os.path.join(srv.up, "turns.bin")) == size
    os.unlink(os.path.join(srv.up, "turns.bin"))
    assert writes < size // 8192, "%d writes for a %d-byte upload" % (writes, size)


def test_stalled_uploads_hold_no_large_buffer():
    # Each upload sends 32 KiB at once (enough to be read in 64 KiB turns), then stalls: the worker
    # must not keep a 64 KiB buffer per stalled connection (6.4 MiB for these 100).
    srv = server()
    pid = worker_pid(srv)
    count, burst = 100, 32 << 10
    before = vm_kib(pid, "VmRSS")
    socks = []
    try:
        for i in range(count):
            s = srv.connect(timeout=10)
            s.sendall(b"PUT /up/stall%d.bin HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (i, 1 << 20)
                      + b"s" * burst)
            socks.append(s)

        def written():
            return sum(os.path.getsize(os.path.join(srv.up, n)) for n in os.listdir(srv.up)
                       if n.startswith(".upload-"))
        assert wait_for(lambda: written() == count * burst), (written(), count * burst)
        grown = vm_kib(pid, "VmRSS") - before
    finally:
        for s in socks:
            s.close()
    assert grown < count * 16, "worker RSS grew %d KiB for %d stalled uploads" % (grown, count)
    assert wait_for(lambda: not [n for n in os.listdir(srv.up) if n.startswith(".upload-")])


# --- asynchronous handlers --------------------------------------------------------------

def test_async_fd_handler_while_same_worker_serves_others():
    path = fifo("wait1")
    pending = server().connect(timeout=10)
    pending.sendall(("GET /t/async/fifo?%s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())
    # One worker: these can only be answered if the pending request does not hold the loop.
    for _ in range(5):
        assert get(server(), "/a.txt").body == b"AAAA"
    pending.settimeout(0.2)
    try:
        early = pending.recv(1)
    except socket.timeout:
        early = None
    assert early is None, "answered before the event happened"
    pending.settimeout(10)
    fifo_write(path, b"ready")
    r = Reader(pending).response()
    assert r.status == 200 and r.body == b"fifo: ready\n", r
    assert r.header("X-Filter") == "v2", "filters run on asynchronous answers too"
    pending.close()


def test_async_timer_answers():
    r = get(server(), "/t/async/timer?ms=50")
    assert r.status == 200 and r.body == b"timer fired\n", r


def test_blocking_job_does_not_block_the_loop():
    path = fifo("wait2")
    pending = server().connect(timeout=10)
    pending.sendall(("GET /t/blocking?%s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())
    # The pool thread now blocks in open()/read() on the FIFO; the loop must go on.
    for _ in range(5):
        assert get(server(), "/a.txt").body == b"AAAA"
    fifo_write(path, b"unblocked")
    r = Reader(pending).response()
    assert r.status == 200 and r.body == b"blocking: unblocked\n", r
    pending.close()


def test_client_disconnect_cancels_pending_handler_cleanly():
    srv = server()
    pid = worker_pid(srv)
    assert get(srv, "/a.txt").status == 200
    before = open_fds(pid)
    path = fifo("wait3")
    pending = srv.connect()
    pending.sendall(("GET /t/async/fifo?%s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())
    assert wait_for(lambda: holds(pid, path)), "the handler never opened the FIFO"
    pending.close()
    log = os.path.join(srv.scratch, "cancel.log")
    assert wait_for(lambda: os.path.exists(log) and ("cancelled %s" % path) in open(log).read()), \
        "the module got no cancel call"
    assert wait_for(lambda: not holds(pid, path)), "the FIFO leaked"
    assert wait_for(lambda: open_fds(pid) <= before), (open_fds(pid), before)
    assert get(srv, "/a.txt").status == 200, "the worker survived"


def test_handler_timeout_answers_503_and_cancels():
    srv = Server(workers=1)
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        srv.globals_text = "handler_timeout = 1\n"
        srv.locations = 'location "/t/" { handler = "testmod" }\n'
        srv.write_config()
        srv.start()
        r = get(srv, "/t/async/timer?ms=60000")
        assert r.status == 503, r
        assert "did not answer within handler_timeout" in srv.log()
    finally:
        srv.cleanup()


def test_upload_in_progress_does_not_hold_the_worker():
    srv = server()
    s = srv.connect(timeout=30)
    s.sendall(b"PUT /up/slow.bin HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (8 << 20))
    s.sendall(b"a" * (4 << 20))
    # Half the body is in: the single worker keeps answering others meanwhile.
    for _ in range(5):
        assert get(srv, "/a.txt").body == b"AAAA"
    s.sendall(b"b" * (4 << 20))
    r = Reader(s).response()
    s.close()
    assert r.status in (201, 204), r
    with open(os.path.join(srv.up, "slow.bin"), "rb") as f:
        assert f.read() == b"a" * (4 << 20) + b"b" * (4 << 20)


def test_put_commit_runs_off_the_loop_and_answers():
    data = os.urandom(200000)
    raw = b"PUT /up/put.bin HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(data) + data
    r, reader = exchange(server(), raw)
    assert r.status in (201, 204), r
    reader.sock.close()
    with open(os.path.join(server().up, "put.bin"), "rb") as f:
        assert f.read() == data


# --- filters, log hook, request fields, extension methods --------------------------------

def test_gzip_filter_compresses_echo_response():
    # A chunked body first leaves non-zero bytes in the worker's reused pool memory:
    # the gzip state must not depend on fresh memory (it once read a stale "finished" flag).
    test_large_chunked_body_spills_and_arrives_intact()
    r = get(server(), "/echo/hello", headers="Accept-Encoding: gzip\r\n")
    assert r.status == 200 and r.header("Content-Encoding") == "gzip", r.headers
    assert "Accept-Encoding" in r.header("Vary")
    text = gzip.decompress(r.body)
    assert text.startswith(b"GET /echo/hello HTTP/1.1\n"), text
    plain = get(server(), "/echo/hello")
    assert plain.header("Content-Encoding") is None and plain.body.startswith(b"GET /echo/hello")


def test_module_filter_and_log_hooks():
    r = get(server(), "/t/stream")
    assert r.header("X-Filter") == "v2"
    log = os.path.join(server().scratch, "hook.log")
    assert wait_for(lambda: os.path.exists(log) and "200 /t/stream 35\n" in open(log).read()), \
        open(log).read() if os.path.exists(log) else "no log"


def test_request_fields_local_address_scheme_and_id():
    a = get(server(), "/t/info").body.decode()
    b = get(server(), "/t/info").body.decode()
    assert "local 127.0.0.1 %d\n" % server().port in a, a
    assert "scheme http\n" in a
    assert "client 127.0.0.1 " in a
    ida = [l for l in a.splitlines() if l.startswith("id ")][0]
    idb = [l for l in b.splitlines() if l.startswith("id ")][0]
    assert ida != idb and len(ida) == 3 + 16, (ida, idb)
    # Lower-case hex of the worker's base plus its counter: two requests on one connection are neighbours.
    (ra, rb), reader = exchange(server(), b"GET /t/info HTTP/1.1\r\nHost: test\r\n\r\n" * 2, count=2)
    reader.sock.close()
    ids = [[l[3:] for l in r.body.decode().splitlines() if l.startswith("id ")][0] for r in (ra, rb)]
    assert all(len(i) == 16 and all(c in "0123456789abcdef" for c in i) for i in ids), ids
    assert int(ids[1], 16) == (int(ids[0], 16) + 1) % (1 << 64), ids


def test_local_address_of_a_wildcard_listener_is_the_one_connected_to():
    # A wildcard listener learns each connection's own address (getsockname), a bound one says its own.
    wildcard = free_port(host="0.0.0.0")
    srv = Server(workers=1, listen=["127.0.0.1:%d" % free_port(), "0.0.0.0:%d" % wildcard])
    srv.module_dir = module_dir_with_tests(srv.dir)
    srv.locations = 'location "/t/" { handler = "testmod" }\n'
    srv.write_config()
    srv.start()
    try:
        for addr in ("127.0.0.2", "127.0.0.3"):
            s = socket.create_connection((addr, wildcard), timeout=10)
            for _ in range(2):   # the second request on the connection reuses what the first resolved
                s.sendall(b"GET /t/info HTTP/1.1\r\nHost: t\r\n\r\n")
                body = Reader(s).response().body.decode()
                assert "local %s %d\n" % (addr, wildcard) in body, body
            s.close()
        body = get(srv, "/t/info").body.decode()
        assert "local 127.0.0.1 %d\n" % srv.address()[1] in body, body
    finally:
        srv.cleanup()


def test_ports_servers_listen_on_are_outside_the_ephemeral_range():
    # A connection made anywhere meanwhile may take an ephemeral port as its local port before the
    # server binds it: the test above once failed in CI with "cannot bind 0.0.0.0:59687".
    low, high = ephemeral_ports()
    ports = [free_port() for _ in range(200)] + [free_port(host="0.0.0.0") for _ in range(50)]
    assert not [p for p in ports if low <= p <= high], (low, high, sorted(ports))
    assert len(set(ports)) > 200, sorted(ports)   # chosen at random, not one after another


def test_extension_method_reaches_module_or_405():
    r, reader = exchange(server(), b"PROPFIND /echo/x HTTP/1.1\r\nHost: t\r\nDepth: 1\r\n\r\n")
    assert r.status == 200 and r.body.startswith(b"PROPFIND /echo/x HTTP/1.1\n"), r
    reader.sock.close()
    r, reader = exchange(server(), b"PROPFIND /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD, OPTIONS", r
    reader.sock.close()


# --- ABI 2 options and lifecycle ----------------------------------------------------------

def test_location_sections_and_server_wide_options():
    assert get(server(), "/t/keys").body == b"app-1=s1\napp-2=s2\n"
    assert get(server(), "/t/server-data").body == b"entries 42\n"


def test_server_init_error_names_file_and_line():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        srv.globals_text = "\ntestmod_store {\n  entries = 0\n}\n"
        srv.locations = 'location "/t/" { handler = "testmod" }\n'
        srv.write_config()
        proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=20)
        assert proc.returncode == 1
        assert b"entries must not be 0" in proc.stderr and srv.conf.encode() + b":" in proc.stderr, \
            proc.stderr
    finally:
        srv.cleanup()


def test_duplicate_section_title_is_an_error():
    srv = Server()
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        srv.locations = ('location "/t/" {\n handler = "testmod"\n key "a" { secret = "1" }\n'
                         ' key "a" { secret = "2" }\n}\n')
        srv.write_config()
        proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=20)
        assert proc.returncode == 1 and b"a" in proc.stderr, proc.stderr
    finally:
        srv.cleanup()


def test_worker_exit_only_for_modules_whose_init_ran():
    srv = Server(workers=1)
    try:
        srv.module_dir = module_dir_with_tests(srv.dir)
        log = os.path.join(scratch_dir(srv), "exit.log")
        # Longer prefixes come first: /aaaa/ is initialised, then /b/ fails, so the worker dies.
        srv.locations = ('location "/aaaa/" { handler = "testmod" exit_log = "%s" }\n'
                         'location "/b/" { handler = "testmod" fail_init = true exit_log = "%s" }\n'
                         % (log, log))
        srv.write_config()
        srv.start(expect_ok=False)
        assert wait_for(lambda: os.path.exists(log) and "exit /aaaa/" in open(log).read(), timeout=10), \
            srv.log()
        assert "exit /b/" not in open(log).read()
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
