"""static, complete: validators, conditional and range requests, compression, listings, limits."""
import gzip
import os
import re
import sys

from harness import Server, curl, exchange, run

SERVER = None
DATA = bytes(range(256)) * 40          # 10240 bytes, every offset recognisable
TEXT = ("The quick brown fox jumps over the lazy dog.\n" * 400).encode()


def server():
    global SERVER
    if SERVER is None:
        SERVER = Server(workers=1)
        root = SERVER.root
        SERVER.locations = (
            'location "/" { handler = "static" root = "%s" }\n'
            'location "/gz/" { handler = "static" root = "%s" gzip = true gzip_min_length = 100 }\n'
            'location "/list/" { handler = "static" root = "%s/list" autoindex = true }\n'
            'location "/cache/" { handler = "static" root = "%s" expires = 3600 }\n'
            'location "/dots/" { handler = "static" root = "%s" dotfiles = true }\n'
            'location "/idx/" { handler = "static" root = "%s/idx" index = {"index.htm", "default.html"} }\n'
            % (root, root, root, root, root, root))
        SERVER.write_config()
        SERVER.file("data.bin", DATA)
        SERVER.file("text.txt", TEXT)
        SERVER.file("small.txt", b"tiny\n")
        SERVER.file("pre.css", b"body { color: red }\n" * 50)
        SERVER.file("pre.css.gz", gzip.compress(b"body { color: red }\n" * 50))
        SERVER.file(".env", b"SECRET=1\n")
        SERVER.file(".well-known/security.txt", b"Contact: mailto:x@example.org\n")
        SERVER.file("list/<b>&amp.txt", b"x" * 123)
        SERVER.file("list/zeta.txt", b"z")
        SERVER.file("list/alpha.txt", b"a")
        os.makedirs(os.path.join(root, "list", "subdir"))
        SERVER.file("idx/default.html", b"default page\n")
        big = os.path.join(root, "huge.bin")
        with open(big, "wb") as f:
            f.truncate(5 * 1024 ** 3)
            f.seek(5 * 1024 ** 3 - 10)
            f.write(b"0123456789")
        os.chmod(big, 0o644)
        SERVER.start()
    return SERVER


def teardown_module():
    if SERVER is not None:
        SERVER.cleanup()


def get(path, headers="", method="GET"):
    raw = "%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (method, path, headers)
    r, reader = exchange(server(), raw.encode(), head_request=(method == "HEAD"))
    reader.sock.close()
    return r


def test_etag_and_last_modified():
    r = get("/data.bin")
    assert r.status == 200 and r.body == DATA
    assert re.match(r'^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$', r.header("ETag")), r.header("ETag")
    assert r.header("Last-Modified").endswith("GMT")
    assert r.header("Accept-Ranges") == "bytes"


def test_if_none_match_304():
    etag = get("/data.bin").header("ETag")
    for value in (etag, "W/" + etag, '"other", ' + etag, "*"):
        r = get("/data.bin", "If-None-Match: %s\r\n" % value)
        assert r.status == 304 and r.body == b"" and r.header("ETag") == etag, (value, r)
    assert get("/data.bin", 'If-None-Match: "nope"\r\n').status == 200


def test_if_modified_since_304():
    lm = get("/data.bin").header("Last-Modified")
    assert get("/data.bin", "If-Modified-Since: %s\r\n" % lm).status == 304
    assert get("/data.bin", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n").status == 200
    assert get("/data.bin", "If-Modified-Since: garbage\r\n").status == 200


def test_if_none_match_takes_precedence_over_ims():
    # RFC 9110 §13.2.2: If-Modified-Since is ignored when If-None-Match is present.
    lm = get("/data.bin").header("Last-Modified")
    r = get("/data.bin", 'If-None-Match: "nope"\r\nIf-Modified-Since: %s\r\n' % lm)
    assert r.status == 200


def test_if_match_and_if_unmodified_since_412():
    etag = get("/data.bin").header("ETag")
    assert get("/data.bin", 'If-Match: "nope"\r\n').status == 412
    assert get("/data.bin", "If-Match: %s\r\n" % etag).status == 200
    assert get("/data.bin", "If-Match: *\r\n").status == 200
    assert get("/data.bin", "If-Match: W/%s\r\n" % etag).status == 412, "If-Match compares strongly"
    assert get("/data.bin", "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n").status == 412


def test_single_range():
    r = get("/data.bin", "Range: bytes=100-199\r\n")
    assert r.status == 206 and r.body == DATA[100:200]
    assert r.header("Content-Range") == "bytes 100-199/10240"
    assert r.header("Content-Length") == "100"


def test_suffix_and_open_ranges():
    r = get("/data.bin", "Range: bytes=-100\r\n")
    assert r.status == 206 and r.body == DATA[-100:]
    r = get("/data.bin", "Range: bytes=10200-\r\n")
    assert r.status == 206 and r.body == DATA[10200:]
    r = get("/data.bin", "Range: bytes=10000-99999\r\n")
    assert r.body == DATA[10000:] and r.header("Content-Range") == "bytes 10000-10239/10240"


def test_unsatisfiable_416():
    r = get("/data.bin", "Range: bytes=20000-\r\n")
    assert r.status == 416 and r.header("Content-Range") == "bytes */10240"


def test_malformed_range_ignored():
    r = get("/data.bin", "Range: bytes=5-1\r\n")
    assert r.status == 200 and r.body == DATA


def parts_of(r):
    boundary = re.search(r"boundary=(\S+)", r.header("Content-Type")).group(1).encode()
    parts = []
    for chunk in r.body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, body = chunk.split(b"\r\n\r\n", 1)
        assert body.endswith(b"\r\n")
        parts.append((head.decode(), body[:-2]))
    return parts


def test_multiple_ranges_multipart():
    r = get("/data.bin", "Range: bytes=0-9, 5000-5009, -5\r\n")
    assert r.status == 206 and r.header("Content-Type").startswith("multipart/byteranges; boundary=")
    parts = parts_of(r)
    assert [p[1] for p in parts] == [DATA[0:10], DATA[5000:5010], DATA[-5:]]
    assert "Content-Range: bytes 5000-5009/10240" in parts[1][0]
    assert "Content-Type: application/octet-stream" in parts[0][0]


def test_overlapping_ranges_cannot_amplify():
    ranges = ",".join("0-%d" % (10239 - i) for i in range(90))
    r = get("/data.bin", "Range: bytes=%s\r\n" % ranges)
    assert len(r.body) <= len(DATA), "the response must not exceed the file"
    assert r.body == DATA or r.status == 206


def test_if_range():
    etag = get("/data.bin").header("ETag")
    assert get("/data.bin", "Range: bytes=0-0\r\nIf-Range: %s\r\n" % etag).status == 206
    r = get("/data.bin", 'Range: bytes=0-0\r\nIf-Range: "stale"\r\n')
    assert r.status == 200 and r.body == DATA
    lm = get("/data.bin").header("Last-Modified")
    assert get("/data.bin", "Range: bytes=0-0\r\nIf-Range: %s\r\n" % lm).status == 206


def test_precompressed_sibling():
    r = get("/pre.css", "Accept-Encoding: gzip, deflate\r\n")
    assert r.header("Content-Encoding") == "gzip" and r.header("Content-Type") == "text/css"
    assert gzip.decompress(r.body) == b"body { color: red }\n" * 50
    assert r.header("Vary") == "Accept-Encoding"
    r = get("/pre.css")
    assert r.header("Content-Encoding") is None and r.body == b"body { color: red }\n" * 50
    assert r.header("Vary") == "Accept-Encoding"
    r = get("/pre.css", "Accept-Encoding: gzip;q=0\r\n")
    assert r.header("Content-Encoding") is None


def test_gzip_on_the_fly_decoded_by_curl():
    out = os.path.join(server().dir, "text.out")
    rc, _, err = curl("--compressed", "-D", out + ".h", "-o", out, server().url("/gz/text.txt"))
    assert rc == 0, err
    with open(out, "rb") as f:
        assert f.read() == TEXT
    headers = open(out + ".h").read().lower()
    assert "content-encoding: gzip" in headers and "vary: accept-encoding" in headers
    assert "transfer-encoding: chunked" in headers, headers
    # the first compressed answer streamed (curl's, chunked) and left its copy in the open-file cache:
    # this one is that copy, with its length
    r = get("/gz/text.txt", "Accept-Encoding: gzip\r\n")
    assert r.header("Content-Length") == str(len(r.body)) and len(r.body) < len(TEXT), r
    assert gzip.decompress(r.body) == TEXT
    assert r.header("ETag").startswith("W/"), "a transformed body has a weak validator"


def test_gzip_not_for_small_or_unaccepted():
    assert get("/gz/small.txt", "Accept-Encoding: gzip\r\n").header("Content-Encoding") is None
    r = get("/gz/text.txt")
    assert r.header("Content-Encoding") is None and r.body == TEXT and r.header("Vary") == "Accept-Encoding"
    r = get("/gz/data.bin", "Accept-Encoding: gzip\r\n")
    assert r.header("Content-Encoding") is None, "binary types are not compressed"


def test_autoindex_listing_escaped_and_sorted():
    r = get("/list/")
    assert r.status == 200 and r.header("Content-Type").startswith("text/html")
    body = r.body.decode()
    assert "&lt;b&gt;&amp;amp.txt" in body
    assert "<b>&amp.txt" not in body, "names must be HTML-escaped"
    assert 'href="%3Cb%3E%26amp.txt"' in body
    names = re.findall(r'href="([^"]+)"', body)
    assert names == ["../", "subdir/", "%3Cb%3E%26amp.txt", "alpha.txt", "zeta.txt"], names
    assert "<td>123</td>" in body


def test_autoindex_off_by_default():
    server().file("nolist/x.txt", b"x")
    assert get("/nolist/").status == 403


def test_cache_control_and_expires():
    r = get("/cache/small.txt")
    assert r.header("Cache-Control") == "max-age=3600" and r.header("Expires").endswith("GMT")
    assert get("/small.txt").header("Cache-Control") is None


def test_dotfiles_refused_by_default():
    assert get("/.env").status == 403
    assert get("/.well-known/security.txt").status == 200
    assert get("/dots/.env").body == b"SECRET=1\n"


def test_index_list():
    r = get("/idx/")
    assert r.status == 200 and r.body == b"default page\n"


def test_file_over_4gib():
    r = get("/huge.bin", method="HEAD")
    assert r.header("Content-Length") == str(5 * 1024 ** 3)
    r = get("/huge.bin", "Range: bytes=-10\r\n")
    assert r.status == 206 and r.body == b"0123456789"
    assert r.header("Content-Range") == "bytes %d-%d/%d" % (5 * 1024 ** 3 - 10, 5 * 1024 ** 3 - 1, 5 * 1024 ** 3)
    r = get("/huge.bin", "Range: bytes=4294967295-4294967304\r\n")
    assert r.status == 206 and r.body == b"\0" * 10


if __name__ == "__main__":
    sys.exit(run(globals()))
