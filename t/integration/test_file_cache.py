"""The open-file cache over real sockets: staleness window, deletion, replacement by
rename, conditional and range requests from the cache, eviction under small limits."""
import gzip
import hashlib
import os
import time

from harness import Reader, Server, exchange, get, module_dir_with_tests, run, wait_for

VALID = 3   # file_cache_valid for these tests, seconds


def start(globals_text):
    srv = Server(workers=1, globals_text=globals_text)
    srv.start()
    return srv


def worker_pid(srv):
    assert wait_for(lambda: len(srv.worker_pids()) == 1)
    return srv.worker_pids()[0]


def fds_under(pid, directory):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(directory + "/"):
                n += 1
        except OSError:
            pass
    return n


def rewrite(path, data):
    with open(path, "r+b") as f:
        f.write(data)


def test_rewrite_in_place_served_from_cache_then_fresh_within_window():
    srv = start("file_cache_valid = %d\n" % VALID)
    try:
        path = srv.file("a.txt", b"one")
        assert get(srv, "/a.txt").body == b"one"
        rewrite(path, b"two")               # same size, same inode: only mtime/ctime change
        # Within the window the cached copy answers (that is the cache working) ...
        assert get(srv, "/a.txt").body == b"one"
        t0 = time.monotonic()
        # ... and never longer than the window.
        assert wait_for(lambda: get(srv, "/a.txt").body == b"two", timeout=VALID + 3)
        assert time.monotonic() - t0 <= VALID + 1.5
    finally:
        srv.cleanup()


def test_deleted_file_stops_being_served():
    srv = start("file_cache_valid = %d\n" % VALID)
    try:
        path = srv.file("gone.txt", b"here")
        assert get(srv, "/gone.txt").status == 200
        os.unlink(path)
        assert wait_for(lambda: get(srv, "/gone.txt").status == 404, timeout=VALID + 3)
    finally:
        srv.cleanup()


def test_replacement_by_rename_is_picked_up():
    srv = start("file_cache_valid = %d\n" % VALID)
    try:
        srv.file("r.txt", b"old version")
        assert get(srv, "/r.txt").body == b"old version"
        tmp = srv.file(".r.tmp", b"new version!")
        os.rename(tmp, os.path.join(srv.root, "r.txt"))
        assert wait_for(lambda: get(srv, "/r.txt").body == b"new version!", timeout=VALID + 3)
    finally:
        srv.cleanup()


def test_missing_file_appears_after_window():
    srv = start("file_cache_valid = %d\n" % VALID)
    try:
        assert get(srv, "/later.txt").status == 404
        srv.file("later.txt", b"now")
        assert wait_for(lambda: get(srv, "/later.txt").status == 200, timeout=VALID + 3)
    finally:
        srv.cleanup()


def test_missing_paths_do_not_evict_hot_entries():
    """Issue 32: "not found" is cached only with file_cache_errors = true, so a client asking for
    many missing paths cannot push the hot files out of a small cache."""
    srv = start("file_cache_valid = 60\nfile_cache_entries = 4\n")
    try:
        path = srv.file("hot.txt", b"one")
        assert get(srv, "/hot.txt").body == b"one"
        rewrite(path, b"two")   # the cached copy answers while it stays cached
        for i in range(40):
            assert get(srv, "/missing-%d.txt" % i).status == 404
        assert get(srv, "/hot.txt").body == b"one", "missing paths evicted the hot entry"
        # and a file made after its 404 is served at once: the 404 was not kept
        assert get(srv, "/later.txt").status == 404
        srv.file("later.txt", b"now")
        assert get(srv, "/later.txt").status == 200
    finally:
        srv.cleanup()


def test_file_cache_errors_caches_not_found_for_the_window():
    srv = start("file_cache_valid = 60\nfile_cache_errors = true\n")
    try:
        assert get(srv, "/later.txt").status == 404
        srv.file("later.txt", b"now")
        assert get(srv, "/later.txt").status == 404   # the operator asked for it
    finally:
        srv.cleanup()


def test_conditional_and_range_requests_from_the_cache():
    srv = start("file_cache_valid = 60\n")
    try:
        small = bytes(range(256)) * 4            # kept in memory
        large = os.urandom(200000)               # served by sendfile from the cached fd
        srv.file("small.bin", small)
        srv.file("large.bin", large)
        for name, data in (("small.bin", small), ("large.bin", large)):
            first = get(srv, "/" + name)
            assert first.body == data
            etag = first.header("ETag")
            for _ in range(2):   # the second round is certainly a cache hit
                r = get(srv, "/" + name, headers="If-None-Match: %s\r\n" % etag)
                assert r.status == 304 and r.body == b"", r
                r = get(srv, "/" + name, headers="Range: bytes=10-19\r\n")
                assert r.status == 206 and r.body == data[10:20], r
                assert r.header("Content-Range") == "bytes 10-19/%d" % len(data)
                r = get(srv, "/" + name, headers="Range: bytes=0-1,5-6\r\n")
                assert r.status == 206 and data[0:2] in r.body and data[5:7] in r.body, r
                r = get(srv, "/" + name, headers="If-Modified-Since: %s\r\n" % first.header("Last-Modified"))
                assert r.status == 304
                assert get(srv, "/" + name).body == data
    finally:
        srv.cleanup()


def fields(resp):
    return [name.lower() for name, _ in resp.headers]


def test_prebuilt_fields_of_a_small_file_are_the_fields_of_the_slow_path():
    # A cached small file's ETag, Last-Modified, Accept-Ranges and Content-Type are formatted once;
    # filters and errors still see and change them, and a 304 carries the validators only.
    srv = Server(workers=1, globals_text="file_cache_valid = 60\n")
    srv.module_dir = module_dir_with_tests(srv.dir)
    srv.locations = ('location "/gz/" { handler = "static" root = "%s" gzip = true gzip_min_length = 100 }\n'
                     'location "/tagged/" { handler = "static" root = "%s" expires = 60 }\n'
                     'location "/t/" { handler = "testmod" files_root = "%s" filter_tag = "f" }\n'
                     'location "/" { handler = "static" root = "%s" }\n' % ((srv.root,) * 4))
    srv.write_config()
    text = b"all work and no play makes a dull server\n" * 40     # compressible, kept in memory
    srv.file("page.txt", text)
    for d in ("gz", "tagged"):
        srv.file(d + "/page.txt", text)
    srv.start()
    try:
        plain = get(srv, "/page.txt")
        again = get(srv, "/page.txt")
        assert plain.status == 200 and again.body == text, plain
        for r in (plain, again):
            names = fields(r)
            for name in ("etag", "last-modified", "accept-ranges", "content-type", "content-length", "date"):
                assert names.count(name) == 1, (name, r.headers)
            assert r.header("Content-Type") == "text/plain" and r.header("Accept-Ranges") == "bytes"
            assert r.header("Content-Length") == str(len(text))
        assert again.header("ETag") == plain.header("ETag")
        # A 304 from the same entry: validators yes, Content-Type no (RFC 9110 15.4.5).
        r = get(srv, "/page.txt", headers="If-None-Match: %s\r\n" % plain.header("ETag"))
        assert r.status == 304 and r.header("ETag") == plain.header("ETag") and r.header("Content-Type") is None, r
        # HEAD: the same fields, no body.
        r, reader = exchange(srv, b"HEAD /page.txt HTTP/1.1\r\nHost: t\r\n\r\n", head_request=True)
        reader.sock.close()
        assert r.header("ETag") == plain.header("ETag") and r.header("Content-Length") == str(len(text)), r
        # The gzip filter weakens the prebuilt ETag, once.
        for _ in range(2):
            r = get(srv, "/gz/page.txt", headers="Accept-Encoding: gzip\r\n")
            assert r.header("Content-Encoding") == "gzip" and gzip.decompress(r.body) == text, r
            assert r.header("ETag").startswith('W/"') and fields(r).count("etag") == 1, r.headers
        # Fields the location adds come beside the prebuilt ones.
        r = get(srv, "/tagged/page.txt")
        assert r.header("Cache-Control") == "max-age=60" and r.header("ETag") is not None, r.headers
        # A module serving the same entry as another type gets its own type (the slow path).
        for _ in range(2):
            r = get(srv, "/t/file/page.txt?text/x-other")
            assert r.status == 200 and r.body == text and r.header("Content-Type") == "text/x-other", r
            assert fields(r).count("content-type") == 1 and r.header("X-Filter") == "f", r.headers
            assert get(srv, "/t/file/page.txt?text/plain").header("Content-Type") == "text/plain"
    finally:
        srv.cleanup()


def test_eviction_under_small_limits_keeps_answers_right():
    srv = start('file_cache_valid = 60\nfile_cache_entries = 3\nfile_cache_size = "25k"\n')
    try:
        files = {}
        for i in range(8):
            data = os.urandom(10000 + i)
            files["f%d.bin" % i] = data
            srv.file("f%d.bin" % i, data)
        pid = worker_pid(srv)
        for _ in range(3):
            for name, data in files.items():
                r = get(srv, "/" + name)
                assert r.status == 200 and r.body == data, name
                # Bounded: never more cached descriptors than file_cache_entries.
                assert fds_under(pid, srv.root) <= 3, fds_under(pid, srv.root)
    finally:
        srv.cleanup()


def test_file_evicted_during_sendfile_arrives_whole():
    srv = start('file_cache_valid = 60\nfile_cache_entries = 1\n')
    try:
        big = os.urandom(4 << 20)
        srv.file("big.bin", big)
        srv.file("other.txt", b"other")
        s = srv.connect(timeout=20)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = Reader(s)
        reader._more()                          # the transfer has started
        for _ in range(3):                      # evict big.bin while it is being sent
            assert get(srv, "/other.txt").body == b"other"
        r = reader.response()
        assert r.status == 200 and hashlib.sha256(r.body).digest() == hashlib.sha256(big).digest()
        s.close()
    finally:
        srv.cleanup()


def test_cache_off_serves_every_change_at_once():
    srv = start("file_cache_valid = 0\n")
    try:
        path = srv.file("a.txt", b"one")
        assert get(srv, "/a.txt").body == b"one"
        rewrite(path, b"two")
        assert get(srv, "/a.txt").body == b"two"
    finally:
        srv.cleanup()


def test_own_put_is_seen_at_once_by_the_same_worker():
    srv = Server(workers=1, globals_text="file_cache_valid = 60\n")
    srv.locations = 'location "/" { handler = "static" root = "%s" writable = true }\n' % srv.root
    os.chmod(srv.root, 0o777)
    srv.write_config()
    srv.start()
    try:
        srv.file("p.txt", b"before")
        assert get(srv, "/p.txt").body == b"before"
        raw = b"PUT /p.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nafter"
        r, reader = exchange(srv, raw)
        reader.sock.close()
        assert r.status == 204, r
        assert get(srv, "/p.txt").body == b"after"
    finally:
        srv.cleanup()


def test_files_a_module_opens_are_closed_when_sent():
    # httpd_response_set_body_file takes the module's descriptor: it used to stay open after the answer
    # went out (each download leaked one until the worker ran out); it is the request's now, closed with it,
    # whether the body was sent whole, as a range, not at all (HEAD, 304), or through a body filter
    srv = Server(workers=1)
    srv.locations = ('location "/d/" { handler = "download" root = "%s" }\n'
                     'location "/z/" { handler = "download" root = "%s" compress = {"gzip"} '
                     'compress_types = {"*"} compress_min_length = 0 }\n' % (srv.root, srv.root))
    srv.write_config()
    srv.file("f.bin", os.urandom(50000))
    srv.start()
    try:
        pid = worker_pid(srv)
        for i in range(30):
            for extra in ("", "Range: bytes=0-10\r\n", "Accept-Encoding: gzip\r\n"):
                for prefix in ("/d/", "/z/"):
                    r = get(srv, prefix + "f.bin", extra)
                    assert r.status in (200, 206), r
            s = srv.connect()
            s.sendall(b"HEAD /d/f.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            assert Reader(s).response(head_request=True).status == 200
            s.close()
            etag = get(srv, "/d/f.bin").header("ETag")
            assert get(srv, "/d/f.bin", "If-None-Match: %s\r\n" % etag).status == 304
        assert wait_for(lambda: fds_under(pid, srv.root) == 0, timeout=10), fds_under(pid, srv.root)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
