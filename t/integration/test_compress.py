"""Compression over real sockets: gzip, br and zstd made by the coding modules and decoded by
independent decoders (Python's zlib, Debian's python3-brotli, the zstd command), compared byte for
byte with the file; Accept-Encoding q-values; Vary and ETag; precompressed files and their ranges;
small files compressed once; a proxied stream compressed as it arrives; HTTP/2; the body-filter
API from outside the tree (examples/sub_filter, in front of gzip); configuration errors."""
import os
import random
import subprocess
import threading
import time
import zlib

import brotli

from harness import Reader, Server, config_error_at, curl, module_dir_with_tests, run
from test_proxy import App

WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"server", b"stream", b"window", b"coding", b"\n"]


def text(size, seed=1):
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(WORDS) + b" "
    return bytes(out[:size])


def gunzip(data):
    return zlib.decompress(data, 47)   # 32 + 15: a gzip wrapper


def unzstd(data):
    proc = subprocess.run(["zstd", "-d", "-c", "-q"], input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


DECODE = {"gzip": gunzip, "br": brotli.decompress, "zstd": unzstd}


def ask(srv, path, accept=None, method="GET", extra=""):
    s = srv.connect(timeout=30)
    head = "%s %s HTTP/1.1\r\nHost: t\r\n%s%s\r\n" % (method, path, "" if accept is None else
                                                       "Accept-Encoding: %s\r\n" % accept, extra)
    s.sendall(head.encode())
    r = Reader(s).response(head_request=method == "HEAD")
    s.close()
    return r


LOCATIONS = '''location "/" {
    handler  = "static"
    root     = "%(root)s"
    compress = {"zstd", "br", "gzip"}
    compress_level = {"zstd 3", "br 5", "gzip 6"}
    compress_min_length = 256
}
location "/json/" {
    handler  = "static"
    root     = "%(root)s/json"
    compress = {"br", "gzip"}
    compress_types = {"application/json"}
    compress_min_length = 0
    precompressed = false
}
location "/legacy/" {
    handler  = "static"
    root     = "%(root)s/legacy"
    gzip     = true
    gzip_min_length = 100
    precompressed = false
}
location "/echo" {
    handler  = "echo"
    compress = {"gzip"}
}
'''


def start(extra_locations="", listen_h2c=False, module_dir=None):
    srv = Server(workers=1, module_dir=module_dir)
    if listen_h2c:
        srv.h2c_port = __import__("harness").free_port()
        srv.listen = srv.listen + ["127.0.0.1:%d h2c" % srv.h2c_port]
    for sub in ("json", "legacy"):
        os.makedirs(os.path.join(srv.root, sub), exist_ok=True)
    srv.locations = LOCATIONS % {"root": srv.root} + extra_locations
    srv.write_config()
    return srv


def test_each_coding_decodes_to_the_file_byte_for_byte():
    srv = start()
    big, small = text(300000), text(3000, seed=2)
    srv.file("big.txt", big)
    srv.file("small.html", small)
    srv.file("legacy/page.css", small)
    srv.start()
    try:
        for coding, decode in DECODE.items():
            r = ask(srv, "/big.txt", coding)
            assert r.status == 200 and r.header("Content-Encoding") == coding, r
            assert r.header("Transfer-Encoding") == "chunked" and r.header("Content-Length") is None, r
            assert len(r.body) < len(big) // 2 and decode(r.body) == big, coding
            # a small file is compressed once, then served from the copy with its length
            first, second = ask(srv, "/small.html", coding), ask(srv, "/small.html", coding)
            for r in (first, second):
                assert r.status == 200 and r.header("Content-Encoding") == coding, r
                assert r.header("Content-Length") == str(len(r.body)) and decode(r.body) == small, coding
                # the cache's prebuilt fields keep HTTP/1.1's spelling when the coding edits them
                names = [k for k, _ in r.headers]
                assert "ETag" in names and "Last-Modified" in names and "Content-Type" in names, names
            assert first.body == second.body
        # gzip = true is compress = {"gzip"}, with gzip_min_length
        r = ask(srv, "/legacy/page.css", "br, gzip")
        assert r.header("Content-Encoding") == "gzip" and gunzip(r.body) == small, r
        srv.file("legacy/tiny.css", b"x" * 50)
        r = ask(srv, "/legacy/tiny.css", "gzip")
        assert r.header("Content-Encoding") is None and r.body == b"x" * 50, r
        # the handler's own body: echo's, compressed as it is made
        r = ask(srv, "/echo?" + "a" * 3000, "gzip")
        assert r.status == 200 and r.header("Content-Encoding") == "gzip", r
        assert b"a" * 3000 in gunzip(r.body)
    finally:
        srv.cleanup()


def test_q_values_identity_and_the_servers_order():
    srv = start()
    body = text(5000)
    srv.file("a.txt", body)
    srv.start()
    try:
        cases = [
            ("gzip", "gzip"), ("br", "br"), ("zstd", "zstd"),
            ("gzip, br, zstd", "zstd"),                 # a tie: the server's order (zstd, br, gzip)
            ("gzip, br", "br"),
            ("br;q=0.5, gzip", "gzip"),                 # the client's q first
            ("zstd;q=0.1, br;q=0.9, gzip;q=0.9", "br"),
            ("*", "zstd"), ("*;q=0, gzip", "gzip"), ("gzip;q=0, *", "zstd"),
            ("GZIP", "gzip"), ("x-gzip", "gzip"), ("gzip ; q=1.0", "gzip"),
            ("gzip;q=0", None), ("identity", None), ("compress, deflate", None),
            ("gzip;q=1.5", None), ("br;q=0.0001", None),   # not q-values: not acceptable
            ("", None),
        ]
        for accept, want in cases:
            r = ask(srv, "/a.txt", accept)
            assert r.status == 200 and r.header("Content-Encoding") == want, (accept, r)
            assert r.header("Vary") == "Accept-Encoding", (accept, r)
            got = DECODE[want](r.body) if want else r.body
            assert got == body, accept
        r = ask(srv, "/a.txt")
        assert r.header("Content-Encoding") is None and r.header("Vary") == "Accept-Encoding", r
        # identity refused: compressed even below compress_min_length; nothing acceptable: identity anyway
        srv.file("tiny.txt", b"tiny\n")
        assert ask(srv, "/tiny.txt", "gzip").header("Content-Encoding") is None
        r = ask(srv, "/tiny.txt", "gzip, identity;q=0")
        assert r.header("Content-Encoding") == "gzip" and gunzip(r.body) == b"tiny\n", r
        r = ask(srv, "/tiny.txt", "identity;q=0, *;q=0")
        assert r.status == 200 and r.body == b"tiny\n", r
    finally:
        srv.cleanup()


def test_vary_etag_ranges_conditionals_and_head():
    srv = start()
    body = text(40000)
    srv.file("a.txt", body)
    srv.file("img.png", b"\x89PNG" + os.urandom(5000))
    srv.file("json/data.json", b'{"k": "%s"}' % (b"v" * 3000))
    srv.file("json/page.txt", text(3000))
    srv.start()
    try:
        plain = ask(srv, "/a.txt")
        strong = plain.header("ETag")
        assert strong.startswith('"') and plain.header("Accept-Ranges") == "bytes", plain
        r = ask(srv, "/a.txt", "br")
        assert r.header("ETag") == "W/" + strong and r.header("Accept-Ranges") is None, r
        # If-None-Match compares weakly: either tag gives 304, with Vary as the 200 had it
        for tag in (strong, "W/" + strong):
            r = ask(srv, "/a.txt", "br", extra="If-None-Match: %s\r\n" % tag)
            assert r.status == 304 and r.header("Vary") == "Accept-Encoding", r
        # a range is a range of the file: identity, 206, never a slice of a compressed stream
        r = ask(srv, "/a.txt", "br, gzip", extra="Range: bytes=100-199\r\n")
        assert r.status == 206 and r.header("Content-Encoding") is None and r.body == body[100:200], r
        assert r.header("Vary") == "Accept-Encoding", r
        # HEAD: the GET's head, no body
        r = ask(srv, "/a.txt", "zstd", method="HEAD")
        assert r.status == 200 and r.header("Content-Encoding") == "zstd" and r.body == b"", r
        assert r.header("Content-Length") is None, r
        # not a compressible type: no Vary, no coding
        r = ask(srv, "/img.png", "gzip, br")
        assert r.header("Content-Encoding") is None and r.header("Vary") is None, r
        # compress_types: only JSON in /json/, from 0 bytes
        r = ask(srv, "/json/data.json", "gzip")
        assert r.header("Content-Encoding") == "gzip" and b'"k"' in gunzip(r.body), r
        r = ask(srv, "/json/page.txt", "gzip")
        assert r.header("Content-Encoding") is None and r.header("Vary") is None, r
        # a 404 is not compressed
        r = ask(srv, "/missing.txt", "gzip")
        assert r.status == 404 and r.header("Content-Encoding") is None, r
    finally:
        srv.cleanup()


def test_precompressed_files_are_chosen_and_ranged():
    srv = start()
    body = text(20000)
    srv.file("app.js", body)
    variants = {"gz": zlib.compress(body, 9, ), "br": brotli.compress(body),
                "zst": subprocess.run(["zstd", "-c", "-q", "-19"], input=body, stdout=subprocess.PIPE,
                                      check=True, timeout=60).stdout}
    # a real gzip file for .gz (zlib.compress makes a zlib stream)
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    variants["gz"] = co.compress(body) + co.flush()
    for ext, data in variants.items():
        srv.file("app.js." + ext, data)
    srv.file("old.js", body)
    srv.file("old.js.br", brotli.compress(b"stale"))
    past = time.time() - 3600
    os.utime(os.path.join(srv.root, "old.js.br"), (past, past))
    srv.start()
    try:
        for accept, ext, coding in (("br", "br", "br"), ("gzip", "gz", "gzip"), ("zstd", "zst", "zstd"),
                                    ("gzip, br, zstd", "zst", "zstd"), ("gzip;q=0.8, br;q=0.9", "br", "br")):
            r = ask(srv, "/app.js", accept)
            assert r.status == 200 and r.header("Content-Encoding") == coding, (accept, r)
            assert r.body == variants[ext] and r.header("Content-Length") == str(len(variants[ext])), accept
            assert r.header("ETag").startswith('"') and coding in r.header("ETag"), r   # its own strong tag
            assert DECODE[coding](r.body) == body
        # a range of a precompressed file is a range of that file
        r = ask(srv, "/app.js", "br", extra="Range: bytes=0-9\r\n")
        assert r.status == 206 and r.header("Content-Encoding") == "br" and r.body == variants["br"][:10], r
        # an older sibling is not served: the file is compressed on the fly instead
        r = ask(srv, "/old.js", "br")
        assert r.header("Content-Encoding") == "br" and brotli.decompress(r.body) == body, r
    finally:
        srv.cleanup()


def test_http2_gets_the_same_codings():
    srv = start(listen_h2c=True)
    big, small = text(200000), text(2000)
    srv.file("big.txt", big)
    srv.file("small.txt", small)
    srv.start()
    try:
        for coding, decode in DECODE.items():
            for path, body in (("/big.txt", big), ("/small.txt", small)):
                rc, out, err = curl("--http2-prior-knowledge", "-D", "-", "-H", "Accept-Encoding: " + coding,
                                    "http://127.0.0.1:%d%s" % (srv.h2c_port, path))
                assert rc == 0, err
                head, _, data = out.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/2 200") and b"content-encoding: " + coding.encode() in head, head
                assert b"vary: Accept-Encoding" in head, head
                assert decode(data) == body, (coding, path)
    finally:
        srv.cleanup()


def test_large_bodies_compress_in_bounded_memory():
    # a 1 GiB file (sparse: zeros) through zstd and gzip: the worker's memory stays flat
    srv = start()
    path = os.path.join(srv.root, "huge.txt")
    size = 1 << 30
    with open(path, "wb") as f:
        f.truncate(size)
    srv.start()
    try:
        pid = srv.worker_pids()[0]

        def rss():
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
            return 0
        base, peak = rss(), [0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.05)
        t = threading.Thread(target=sample, daemon=True)
        t.start()
        for coding in ("zstd", "gzip"):
            s = srv.connect(timeout=120)
            s.sendall(("GET /huge.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: %s\r\nConnection: close\r\n\r\n"
                       % coding).encode())
            decoder = subprocess.Popen(["zstd", "-d", "-c", "-q"] if coding == "zstd" else ["gzip", "-d", "-c"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            counted = [0]

            def count():
                while True:
                    piece = decoder.stdout.read(1 << 20)
                    if not piece:
                        return
                    assert piece.count(0) == len(piece)
                    counted[0] += len(piece)
            counter = threading.Thread(target=count, daemon=True)
            counter.start()
            raw = b""
            while b"\r\n\r\n" not in raw:
                raw += s.recv(65536)
            head, _, rest = raw.partition(b"\r\n\r\n")
            assert b"Content-Encoding: " + coding.encode() in head, head
            # de-chunk as it comes
            buf = rest
            while True:
                while b"\r\n" not in buf:
                    buf += s.recv(65536)
                line, _, buf = buf.partition(b"\r\n")
                n = int(line, 16)
                if n == 0:
                    break
                while len(buf) < n + 2:
                    more = s.recv(1 << 20)
                    assert more, "closed mid-body"
                    buf += more
                decoder.stdin.write(buf[:n])
                buf = buf[n + 2:]
            decoder.stdin.close()
            counter.join(120)
            decoder.wait(60)
            s.close()
            assert counted[0] == size, (coding, counted[0])
        stop.set()
        t.join(5)
        assert peak[0] - base < 16 * 1024, "1 GiB compressed grew the worker by %d KiB" % (peak[0] - base)
    finally:
        srv.cleanup()


def test_a_proxied_stream_is_compressed_as_it_arrives():
    app = App("compress")
    srv = Server(workers=1)
    srv.globals_text = 'upstream "app" { server = { "127.0.0.1:%d" } }\n' % app.port
    srv.locations = ('location "/" { handler = "proxy"  upstream = "app"  compress = {"gzip", "br"}\n'
                     '  compress_min_length = 0 }\n')
    srv.write_config()
    srv.start()
    gate = os.path.join(srv.dir, "gate")
    try:
        for coding in ("gzip", "br"):
            if os.path.exists(gate):
                os.unlink(gate)
            s = srv.connect(timeout=30)
            s.sendall(("GET /drip?gate=%s HTTP/1.1\r\nHost: t\r\nAccept-Encoding: %s\r\n\r\n"
                       % (gate, coding)).encode())
            dec = zlib.decompressobj(47) if coding == "gzip" else brotli.Decompressor()
            seen, buf = b"", b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, _, buf = buf.partition(b"\r\n\r\n")
            assert b"Content-Encoding: " + coding.encode() in head and b"chunked" in head, head
            released = False
            while True:
                while b"\r\n" not in buf:
                    more = s.recv(65536)
                    assert more, "closed"
                    buf += more
                line, _, buf = buf.partition(b"\r\n")
                n = int(line, 16)
                if n == 0:
                    break
                while len(buf) < n + 2:
                    buf += s.recv(65536)
                piece, buf = buf[:n], buf[n + 2:]
                seen += dec.decompress(piece) if coding == "gzip" else dec.process(piece)
                if not released and b"first part of the stream\n" * 40 in seen:
                    # the first part reached us, decoded, while the app still holds the rest
                    assert b"the rest" not in seen
                    open(gate, "w").close()
                    released = True
            s.close()
            assert released, seen[:200]
            assert seen == b"first part of the stream\n" * 40 + b"the rest, after the gate\n" * 40
        # Cache-Control: no-transform (RFC 9110 §7.7): an intermediary leaves the bytes alone
        r = ask(srv, "/notransform", "gzip, br")
        assert r.status == 200 and r.header("Content-Encoding") is None, r
        assert r.body == b"keep these bytes as they are\n" * 100 and r.header("Vary") == "Accept-Encoding", r
        # already encoded by the app: passed on as it is, not compressed again
        r = ask(srv, "/encoded", "gzip, br")
        assert r.header("Content-Encoding") == "gzip", r
        assert gunzip(r.body) == b"already compressed by the app\n" * 100
    finally:
        srv.cleanup()
        app.stop()


def test_a_third_party_body_filter_runs_before_the_coding():
    srv = Server(workers=1)
    srv.module_dir = module_dir_with_tests(srv.dir)
    srv.locations = ('location "/" {\n  handler = "static"\n  root = "%s"\n  filter = {"sub_filter"}\n'
                     '  sub_filter_search = "needle"\n  sub_filter_replace = "THREAD"\n'
                     '  sub_filter_types = {"text/html", "text/plain"}\n  compress = {"gzip"}\n'
                     '  compress_min_length = 0\n}\n'
                     'location "/t/" {\n  handler = "testmod"\n  filter = {"sub_filter"}\n'
                     '  sub_filter_search = "line"\n  sub_filter_replace = "LINE"\n'
                     '  sub_filter_types = {"text/plain"}\n  compress = {"br"}\n  compress_min_length = 0\n}\n'
                     'location "/once/" {\n  handler = "static"\n  root = "%s/once"\n  filter = {"sub_filter"}\n'
                     '  sub_filter_search = "needle"\n  sub_filter_replace = ""\n  sub_filter_once = true\n}\n'
                     % (srv.root, srv.root))
    os.makedirs(os.path.join(srv.root, "once"))
    srv.write_config()
    # matches everywhere, across every piece boundary of a streamed file, and in a small cached one
    big = (b"hay" * 5000 + b"needle") * 40 + b"needl"
    srv.file("big.html", big)
    srv.file("small.txt", b"a needle, two needles\n")
    srv.file("data.bin", b"needle")
    srv.file("once/x.html", b"needle needle\n")
    srv.start()
    try:
        want = big.replace(b"needle", b"THREAD")
        for accept in (None, "gzip"):
            r = ask(srv, "/big.html", accept)
            assert r.status == 200 and r.header("ETag") is None and r.header("Last-Modified") is None, r
            assert (gunzip(r.body) if accept else r.body) == want, accept
            r = ask(srv, "/small.txt", accept)
            assert (gunzip(r.body) if accept else r.body) == b"a THREAD, two THREADs\n", r
        r = ask(srv, "/data.bin")
        assert r.body == b"needle" and r.header("ETag") is not None, r   # not a listed type: untouched
        r = ask(srv, "/once/x.html")
        assert r.body == b" needle\n", r.body
        rc, out, err = curl("http://127.0.0.1:%d/big.html" % srv.port)
        assert rc == 0 and out == want, err
        # a third-party handler's stream (testmod), filtered then compressed
        r = ask(srv, "/t/stream", "br")
        assert r.header("Content-Encoding") == "br", r
        assert brotli.decompress(r.body) == b"".join(b"LINE %d\n" % i for i in range(5)), r
    finally:
        srv.cleanup()


def test_a_handler_may_still_ask_for_gzip_itself():
    # httpd_response_gzip, from before minor 3: gzip whatever the location says, once the gzip module is
    # loaded (here by another location's compress); refused (-1) when it is not
    for loaded in (True, False):
        srv = Server(workers=1)
        srv.module_dir = module_dir_with_tests(srv.dir)
        srv.locations = ('location "/t/" { handler = "testmod" }\n'
                         + ('location "/z/" { handler = "static" root = "%s" compress = {"gzip"} }\n' % srv.root
                            if loaded else ""))
        srv.write_config()
        srv.start()
        try:
            r = ask(srv, "/t/gzipped", "gzip")
            assert r.status == 200, r
            if loaded:
                assert r.header("Content-Encoding") == "gzip" and gunzip(r.body) == b"z" * 4000, r
            else:
                assert r.header("Content-Encoding") is None and r.header("X-Gzip") == "refused", r
                assert r.body == b"z" * 4000
                assert "the gzip module is not loaded" in srv.log()
        finally:
            srv.cleanup()


def test_file_ranges_pass_a_body_filter_untouched_over_every_protocol():
    # a filter that passes chunks on: a file stays file ranges to the end of the chain (sendfile on HTTP/1.1,
    # NO_COPY DATA frames on h2c, reads on TLS), byte for byte, and the same behind the coding
    from tlsutil import CA
    ca = CA()
    cert, key, _ = ca.issue("localhost")
    os.chmod(key, 0o600)
    srv = Server(workers=1)
    srv.module_dir = module_dir_with_tests(srv.dir)
    srv.h2c_port, srv.tls_port = __import__("harness").free_port(), __import__("harness").free_port()
    srv.listen = srv.listen + ["127.0.0.1:%d h2c" % srv.h2c_port, "127.0.0.1:%d tls" % srv.tls_port]
    tap = os.path.join(srv.dir, "tap.log")
    open(tap, "w").close()
    os.chmod(tap, 0o666)   # the worker's user appends to it
    srv.globals_text = 'tls_certificate = "%s"\ntls_certificate_key = "%s"\n' % (cert, key)
    srv.locations = ('location "/" {\n  handler = "static"\n  root = "%s"\n  filter = {"testmod"}\n'
                     '  body_tap = "%s"\n  compress = {"gzip"}\n}\n' % (srv.root, tap))
    srv.write_config()
    body = os.urandom(3 << 20)
    srv.file("big.bin", body)
    srv.file("big.txt", text(1 << 20))
    srv.start()
    try:
        urls = ("http://127.0.0.1:%d/big.bin" % srv.port, "http://127.0.0.1:%d/big.bin" % srv.h2c_port,
                "https://localhost:%d/big.bin" % srv.tls_port)
        extra = ([], ["--http2-prior-knowledge"], ["--http2", "--cacert", ca.cert, "--resolve",
                                                    "localhost:%d:127.0.0.1" % srv.tls_port])
        for url, args in zip(urls, extra):
            rc, out, err = curl(*(args + [url]))
            assert rc == 0 and out == body, (url, err, len(out))
        with open(tap) as f:
            lines = f.read().split("\n")[:3]
        for line in lines:
            kinds = dict(zip(line.split()[::2], map(int, line.split()[1::2])))
            assert kinds["file"] > 0 and kinds["memory"] == 0 and kinds["bytes"] == len(body), lines
        # behind the tap, the coding reads the ranges it passed
        r = ask(srv, "/big.txt", "gzip")
        assert r.header("Content-Encoding") == "gzip" and gunzip(r.body) == text(1 << 20), r
    finally:
        srv.cleanup()


def test_compression_directives_are_checked_at_their_line():
    srv = Server()
    base = 'location "/" {\n  handler = "static"\n  root = "%s"\n' % srv.root
    for line, message in (('  compress = {"lzma"}', '"lzma" is not a coding this server makes'),
                          ('  compress = {"gzip", "gzip"}', 'listed twice'),
                          ('  compress_level = {"br 12"}', 'the level of br must be from 0 to 11'),
                          ('  compress_level = {"gzip"}', 'is not CODING LEVEL'),
                          ('  compress_types = {"text/html; charset=utf-8"}', 'is not a media type'),
                          ('  compress_min_length = "lots"', 'not a size')):
        text_ = srv.config_text().replace(srv.locations, "") + base + line + "\n}\n"
        if "listed twice" in message:
            # reported at the directive's line by its build step
            rc, err = __import__("harness").config_check(srv, text_)
            assert rc == 1 and message in err, err
            continue
        config_error_at(srv, text_, line, message)
    srv.cleanup()


def test_filter_list_names_body_filter_modules_only():
    srv = Server()
    srv.module_dir = module_dir_with_tests(srv.dir)
    base = 'location "/" {\n  handler = "static"\n  root = "%s"\n' % srv.root
    for line, message in (('  filter = {"echo"}', 'the module has no body filter'),
                          ('  filter = {"gzip"}', 'chosen by compress'),
                          ('  filter = {"nope"}', 'cannot load module')):
        text_ = srv.config_text().replace(srv.locations, "") + base + line + "\n}\n"
        rc, err = __import__("harness").config_check(srv, text_)
        assert rc == 1 and message in err, (line, err)
    srv.cleanup()


if __name__ == "__main__":
    run(globals())
