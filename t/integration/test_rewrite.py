#!/usr/bin/env python3
"""The directives a site moving from nginx needs: locations chosen as nginx chooses them (=, ^~, ~, ~*, @name),
return, rewrite, try_files, add_header and expires, over real sockets."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile

from harness import HTTPD, Server, config_error_at, exchange, free_port, run, wait_for

# Each location answers with its own name, so a request says which location took it.
LOCATIONS = [
    ("= /", "exact-root"),
    ("/", "prefix-root"),
    ("/docs/", "docs"),
    ("/docs/api/", "docs-api"),
    ("^~ /images/", "images-stop"),
    (r"~* \.(png|jpg|gif)$", "regex-img"),
    (r"~ \.php$", "regex-php"),
    (r"~ ^/docs/.*\.txt$", "regex-docs-txt"),
    ("= /docs/exact", "exact-docs"),
    ("/static", "static"),
    (r"~ ^/user/(?<id>\d+)$", "user-$id"),
    ("@named", "named"),
]

# (URI, the location nginx 1.22 picks for it); checked against a real nginx when one is installed.
TABLE = [
    ("/", "exact-root"), ("/index.html", "prefix-root"), ("/docs", "prefix-root"), ("/docs/", "docs"),
    ("/docs/a.html", "docs"), ("/docs/a.txt", "regex-docs-txt"), ("/docs/api/", "docs-api"),
    ("/docs/api/x.txt", "regex-docs-txt"), ("/docs/api/x.php", "regex-php"), ("/docs/exact", "exact-docs"),
    ("/docs/exact/", "docs"), ("/images/a.png", "images-stop"), ("/images/a.php", "images-stop"),
    ("/images", "prefix-root"), ("/img/a.png", "regex-img"), ("/img/A.PNG", "regex-img"), ("/a.PHP", "prefix-root"),
    ("/a.php", "regex-php"), ("/static", "static"), ("/static/x", "static"), ("/user/42", "user-42"),
    ("/user/abc", "prefix-root"), ("/user/42/", "prefix-root"), ("/docs/api/v1/x.png", "regex-img"),
    ("/images/x/y.gif", "images-stop"), ("/x.gif", "regex-img"), ("/docs/x.GIF", "regex-img"),
    ("/docs/api", "docs"), ("/@named", "prefix-root"), ("/%64ocs/", "docs"), ("/docs/../index.html", "prefix-root"),
]


def get(srv, target, *headers, method="GET"):
    raw = "%s %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n" % (
        method, target, getattr(srv, "host", "x"), "".join(h + "\r\n" for h in headers))
    r, _ = exchange(srv, raw.encode(), head_request=method == "HEAD")
    return r


def location_config():
    text = ""
    for title, name in LOCATIONS:
        quote = "'" if "\\" in title else '"'   # regexes in single quotes keep their backslashes
        text += "location %s%s%s { return = \"200 %s\" }\n" % (quote, title, quote, name)
    return text


def nginx_answers(uris):
    """What a real nginx answers for each URI with the same locations, or None without nginx."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        return None
    d = tempfile.mkdtemp(prefix="httpd-nginx-")
    port = free_port()
    locs = "".join("location %s { return 200 \"%s\"; }\n" % (t, n) for t, n in LOCATIONS)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write("daemon off; master_process off; worker_processes 1; pid %s/nginx.pid; error_log %s/error.log;\n"
                "events { worker_connections 64; }\n"
                "http { access_log off; client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;"
                " uwsgi_temp_path %s; scgi_temp_path %s;\n server { listen 127.0.0.1:%d; %s } }\n"
                % (d, d, d, d, d, d, d, port, locs))
    proc = subprocess.Popen([nginx, "-c", os.path.join(d, "nginx.conf"), "-p", d], stderr=subprocess.DEVNULL)
    try:
        def up():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        if not wait_for(up, timeout=10):
            return None
        out = {}
        for uri in uris:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % uri).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            out[uri] = data.split(b"\r\n\r\n", 1)[1].decode()
        return out
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def test_location_order_matches_nginx_on_thirty_uris():
    assert len(TABLE) >= 30
    srv = Server(locations=location_config())
    try:
        srv.start()
        got = {uri: get(srv, uri).body.decode() for uri, _ in TABLE}
        for uri, want in TABLE:
            assert got[uri] == want, (uri, got[uri], want)
        # the one place we differ from nginx, on purpose: a prefix matches on a segment boundary
        assert get(srv, "/staticx").body == b"prefix-root"
        reference = nginx_answers([uri for uri, _ in TABLE])
        if reference is not None:
            assert reference == got, [(u, reference[u], got[u]) for u in reference if reference[u] != got[u]]
    finally:
        srv.cleanup()


def test_bad_regex_is_an_error_at_the_location_line_with_pcre2_message():
    srv = Server()
    try:
        text = srv.config_text() + "location '~ ^/(a|b$' { return = \"200 x\" }\n"
        srv.write_config(text)
        proc = subprocess.run([HTTPD, "-t", "-f", srv.conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30)
        err = proc.stderr.decode()
        line = text.split("\n").index("location '~ ^/(a|b$' { return = \"200 x\" }") + 1
        assert proc.returncode == 1 and "%s:%d: " % (srv.conf, line) in err, err
        assert "missing closing parenthesis" in err and "at offset 7" in err, err
    finally:
        srv.cleanup()


def test_return_in_servers_and_locations():
    srv = Server(globals_text='server "old.example" {\n  return = "301 https://new.example$request_uri"\n}\n'
                              'server "gone.example" {\n  return = "410"\n}\n')
    try:
        srv.locations += ('location "/teapot" { return = "200 short and stout: $arg_kind" }\n'
                          'location "/moved" { return = "302 /new/place" }\n'
                          'location "/missing" { handler = "static" root = "%s" return = "404" }\n' % srv.root)
        srv.write_config()
        srv.start()
        srv.host = "old.example"
        r = get(srv, "/a/b?c=d")
        assert r.status == 301 and r.header("Location") == "https://new.example/a/b?c=d", r
        srv.host = "gone.example"
        assert get(srv, "/anything").status == 410
        srv.host = "x"
        r = get(srv, "/teapot?kind=green")
        assert r.status == 200 and r.body == b"short and stout: green", r
        assert r.header("Content-Type").startswith("text/plain")
        r = get(srv, "/moved?x=1", method="POST")   # return answers every method, before the body
        assert r.status == 302 and r.header("Location") == "/new/place", r
        assert get(srv, "/missing").status == 404
    finally:
        srv.cleanup()


def test_rewrite_last_break_redirect_and_args():
    srv = Server(globals_text="rewrite = {'^/legacy/(.*)$ /docs/$1'}\n")
    try:
        srv.locations = (
            "location \"/\" {\n  return = \"200 root $uri?$args\"\n"
            "  rewrite = {'^/blog/(\\d+)$ /posts/$1 last', '^/old/(.*)$ /new/$1 permanent',"
            " '^/tmp/(.*)$ /elsewhere/$1 redirect', '^/search/(\\w+)$ /find?q=$1', '^/clean/(.*)$ /bare/$1?',"
            " '^/abs/(.*)$ https://example.org/$1'}\n}\n"
            "location \"/posts/\" { return = \"200 post $uri $args\" }\n"
            "location \"/docs/\" { return = \"200 docs $uri\" }\n"
            "location \"/stay/\" {\n  rewrite = {'^/stay/(.*)$ /posts/$1 break'}\n  return = \"200 stayed $uri\"\n}\n"
            "location \"/find\" { return = \"200 find $args\" }\n"
            "location \"/bare/\" { return = \"200 bare [$args]\" }\n")
        srv.write_config()
        srv.start()
        r = get(srv, "/blog/42?ref=x")
        assert r.status == 200 and r.body == b"post /posts/42 ref=x", r
        r = get(srv, "/old/page?a=1")
        assert r.status == 301 and r.header("Location") == "/new/page?a=1", r
        r = get(srv, "/tmp/x")
        assert r.status == 302 and r.header("Location") == "/elsewhere/x", r
        r = get(srv, "/search/cats?page=2")
        assert r.body == b"find q=cats&page=2", r          # new arguments first, the request's after
        r = get(srv, "/clean/y?drop=me")
        assert r.body == b"bare []", r                     # a replacement ending in '?' drops them
        r = get(srv, "/abs/z")
        assert r.status == 302 and r.header("Location") == "https://example.org/z", r
        r = get(srv, "/stay/7")
        assert r.body == b"stayed /posts/7", r             # break: the same location, the new path
        r = get(srv, "/legacy/intro")
        assert r.body == b"docs /docs/intro", r            # the server's rules run before a location is chosen
    finally:
        srv.cleanup()


def test_rewrite_loops_stop_at_ten_and_dots_never_climb():
    srv = Server()
    try:
        secret = os.path.join(srv.dir, "secret.txt")
        with open(secret, "w") as f:
            f.write("outside the root")
        srv.file("files/inside.txt", b"inside")
        srv.locations = (
            "location \"/loop/\" {\n  rewrite = {'^/loop/(.*)$ /loop/$1 last'}\n  return = \"200 never\"\n}\n"
            "location \"/dl/\" {\n  rewrite = {'^/dl/(.*)$ /files/$1 last'}\n  return = \"200 never\"\n}\n"
            "location \"/files/\" { handler = \"static\"  root = \"%s/files\" }\n"
            "location \"/\" { handler = \"static\"  root = \"%s\" }\n" % (srv.root, srv.root))
        srv.write_config()
        srv.start()
        r = get(srv, "/loop/x")
        assert r.status == 500, r
        assert wait_for(lambda: "rewrite or internal redirection cycle" in srv.log())
        assert get(srv, "/dl/inside.txt").body == b"inside"
        # %252e is "%2e" once decoded: the capture holds encoded dots, which the rewritten path decodes
        for target in ("/dl/%252e%252e/%252e%252e/secret.txt", "/dl/%252e%252e%252fsecret.txt",
                       "/dl/..%252f..%252f..%252fsecret.txt"):
            r = get(srv, target)
            assert r.status == 400 and b"outside" not in r.body, (target, r)
        r = get(srv, "/dl/%252e%252e/inside.txt")           # dots that stay inside resolve there
        assert r.status in (200, 404) and b"outside" not in r.body, r
    finally:
        srv.cleanup()


def test_a_map_of_a_thousand_rules_keeps_their_order():
    # rules are found by the first segment they need, yet run in file order on the path as it changes
    rules = ["'^/page-%d$ /new/%d permanent'" % (n, n) for n in range(1000)]
    rules += ["'^/old/(.*)$ /mid/$1'", "'(.*)\\.htm$ $1.html'", "'^/mid/(.*)$ /final/$1 last'",
              "'^/blog/(\\d+)/?$ /posts/$1 last'", "'^/about$ /final/about last'"]
    srv = Server(locations="location \"/\" {\n  return = \"200 root $uri\"\n  rewrite = {%s}\n}\n"
                           "location \"/final/\" { return = \"200 final $uri\" }\n"
                           "location \"/posts/\" { return = \"200 posts $uri\" }\n" % ", ".join(rules))
    try:
        srv.start()
        for n in (0, 5, 999):
            r = get(srv, "/page-%d" % n)
            assert r.status == 301 and r.header("Location") == "/new/%d" % n, r
        assert get(srv, "/page-1000").body == b"root /page-1000"
        assert get(srv, "/page-5/x").body == b"root /page-5/x"
        assert get(srv, "/old/x.htm").body == b"final /final/x.html"    # three rules, two segments, in order
        assert get(srv, "/other/y.htm").body == b"root /other/y.html"   # the unanchored rule runs everywhere
        assert get(srv, "/blog/12/").body == b"posts /posts/12"
        assert get(srv, "/about").body == b"final /final/about"
        assert get(srv, "/about/us").body == b"root /about/us"
    finally:
        srv.cleanup()


def test_try_files_serves_a_single_page_app():
    srv = Server()
    try:
        srv.file("index.html", b"<app/>")
        srv.file("assets/app.js", b"js();")
        srv.file("docs/index.html", b"docs index")
        srv.locations = (
            'location "/" {\n  handler = "static"\n  root = "%s"\n  try_files = {"$uri", "$uri/", "/index.html"}\n}\n'
            'location "/assets/" {\n  handler = "static"\n  root = "%s/assets"\n  try_files = {"$uri", "=404"}\n}\n'
            'location "/api/" {\n  handler = "static"\n  root = "%s"\n  try_files = {"$uri", "@backend"}\n}\n'
            'location "@backend" { return = "200 backend for $uri" }\n' % (srv.root, srv.root, srv.root))
        srv.write_config()
        srv.start()
        for deep in ("/app/settings", "/users/7/profile", "/index.html"):
            r = get(srv, deep)
            assert r.status == 200 and r.body == b"<app/>", (deep, r)
        r = get(srv, "/docs/")
        assert r.status == 200 and r.body == b"docs index", r
        r = get(srv, "/assets/app.js")
        assert r.status == 200 and r.body == b"js();", r
        assert get(srv, "/assets/missing.js").status == 404     # assets stay 404 when missing
        r = get(srv, "/api/users")
        assert r.status == 200 and r.body == b"backend for /api/users", r
        # a symlink out of the root is no file to try_files
        os.symlink("/etc/passwd", os.path.join(srv.root, "assets", "link.js"))
        assert get(srv, "/assets/link.js").status == 404
    finally:
        srv.cleanup()


def test_add_header_and_expires():
    srv = Server(globals_text='add_header = {"X-Frame-Options: DENY", "X-Served-By: $server_name-$uri always"}\n')
    try:
        srv.file("a.css", b"css")
        srv.file("b.txt", b"txt")
        srv.locations = (
            'location "/" { handler = "static"  root = "%s"  expires = "1h" }\n'
            'location "/own/" {\n  handler = "static"\n  root = "%s"\n  expires = "max"\n'
            '  add_header = {"Content-Security-Policy: default-src \'self\' always", "X-Tag: $arg_t"}\n}\n'
            "location '~ \\.txt$' { handler = \"static\"  root = \"%s\"  expires = \"epoch\" }\n"
            % (srv.root, srv.root, srv.root))
        srv.write_config()
        srv.start()
        r = get(srv, "/a.css")
        assert r.status == 200 and r.header("X-Frame-Options") == "DENY" and r.header("X-Served-By") == "-/a.css", r
        assert r.header("Cache-Control") == "max-age=3600" and r.header("Expires") is not None, r
        r = get(srv, "/nope.css")
        assert r.status == 404 and r.header("X-Frame-Options") is None and r.header("X-Served-By") == "-/nope.css"
        assert r.header("Cache-Control") is None, r                        # not on errors, as nginx
        r = get(srv, "/own/a.css?t=7")
        # a location's own add_header replaces the inherited ones, as nginx
        assert r.header("X-Frame-Options") is None and r.header("X-Tag") == "7", r
        assert r.header("Content-Security-Policy") == "default-src 'self'", r
        assert r.header("Cache-Control") == "max-age=315360000", r
        assert get(srv, "/own/nope").header("Content-Security-Policy") == "default-src 'self'"   # always
        r = get(srv, "/b.txt")                                             # a regex location: the whole path
        assert r.status == 200 and r.body == b"txt" and r.header("Cache-Control") == "no-cache", r
        assert r.header("Expires") == "Thu, 01 Jan 1970 00:00:01 GMT", r
    finally:
        srv.cleanup()


def test_framing_headers_and_bad_values_refused_at_their_line():
    srv = Server()
    try:
        base = srv.config_text()
        for bad, message in (
                ('add_header = {"Content-Length: 5"}', "Content-Length is the server's to set"),
                ('add_header = {"X-Ok: 1", "Transfer-Encoding: gzip"}', "Transfer-Encoding is the server's to set"),
                ('add_header = {"Connection: close"}', "Connection is the server's to set"),
                ('add_header = {"Bad Name: x"}', "is not \"Name: value [always]\""),
                ('add_header = {"X-Var: $nosuch"}', "unknown variable $nosuch"),
                ('expires = "soon"', 'expires must be "off", "epoch", "max" or a duration'),
                ('return = "301"', "a redirect needs a URL"),
                ("rewrite = {'^/(a $1 last'}", "missing closing parenthesis"),
                ("rewrite = {'^/a /b sideways'}", '"sideways" is not a flag')):
            config_error_at(srv, base.replace("module_dir", bad + "\nmodule_dir", 1), bad, message)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(run(globals()))
