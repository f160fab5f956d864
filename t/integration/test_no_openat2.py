"""Without openat2(2): a kernel before 5.6, or a container's seccomp profile that does not know it.

The server then walks each path beneath the root itself.  Every path below gets the same answer
as with the kernel's RESOLVE_BENEATH: files, directories and symlinks inside the root are served,
and nothing outside it, however the symlinks point."""
import os
import sys
import time

from harness import Server, get, run, seccomp_refuse_openat2, wait_for

ENOSYS, EPERM = 38, 1

# path: the status RESOLVE_BENEATH gives (and the walk must give too)
EXPECTED = {
    "/hello.txt": 200,
    "/sub/deep/page.html": 200,
    "/dir/": 200,                              # its index.html
    "/listed/": 200,                           # autoindex
    "/inside-link": 200,                       # -> hello.txt
    "/dir-link/deep/page.html": 200,           # -> sub, a directory
    "/sub/up-link": 200,                       # -> ../hello.txt, climbs but stays inside
    "/sub/chain": 200,                         # -> deep/link-to-page -> page.html
    "/escape-link": 403,                       # absolute, outside
    "/escape-relative": 403,                   # -> ../outside-secret.txt
    "/escape-dir/outside-secret.txt": 403,     # absolute directory outside
    "/sub/out-and-back": 403,                  # -> ../../www/hello.txt: leaves the root on the way
    "/loop-a": 404,                            # -> loop-b -> loop-a
    "/missing": 404,
    "/hello.txt/x": 404,                       # a file used as a directory
    "/hello.txt/": 404,                        # the same, by a trailing slash
    "/inside-link/": 404,                      # and through a link to a file
}


def build(errno_value=None):
    srv = Server(workers=1)
    srv.locations = ('location "/listed/" {\n  handler = "static"\n  root = "%s"\n  autoindex = true\n}\n'
                     'location "/" {\n  handler = "static"\n  root = "%s"\n}\n' % (os.path.join(srv.root, "listed"), srv.root))
    srv.file("hello.txt", b"Hello, world!\n")
    srv.file("sub/deep/page.html", b"<p>deep</p>\n")
    srv.file("dir/index.html", b"<h1>index</h1>\n")
    srv.file("listed/a.txt", b"a\n")
    outside = os.path.join(srv.dir, "outside-secret.txt")
    with open(outside, "w") as f:
        f.write("TOP SECRET\n")
    os.chmod(outside, 0o644)
    links = {
        "inside-link": "hello.txt",
        "dir-link": "sub",
        "sub/up-link": "../hello.txt",
        "sub/chain": "deep/link-to-page",
        "sub/deep/link-to-page": "page.html",
        "escape-link": outside,
        "escape-relative": "../outside-secret.txt",
        "escape-dir": srv.dir,
        "sub/out-and-back": "../../www/hello.txt",
        "loop-a": "loop-b",
        "loop-b": "loop-a",
    }
    for name, target in links.items():
        os.symlink(target, os.path.join(srv.root, name))
    srv.write_config()
    if errno_value is not None:
        srv.preexec = lambda: seccomp_refuse_openat2(errno_value)
    return srv.start()


def answers(srv):
    out = {}
    for path in EXPECTED:
        r = get(srv, path)
        assert b"TOP SECRET" not in r.body, (path, r)
        out[path] = r.status
        if r.status == 200 and path in ("/hello.txt", "/inside-link", "/sub/up-link"):
            assert r.body == b"Hello, world!\n", (path, r)
        if r.status == 200 and path in ("/sub/deep/page.html", "/dir-link/deep/page.html", "/sub/chain"):
            assert r.body == b"<p>deep</p>\n", (path, r)
    return out


def check(errno_value, notice):
    srv = build(errno_value)
    try:
        got = answers(srv)
        assert got == EXPECTED, {p: (got[p], EXPECTED[p]) for p in EXPECTED if got[p] != EXPECTED[p]}
        assert b"a.txt" in get(srv, "/listed/").body
        assert wait_for(lambda: notice in srv.log()), srv.log()
        # The worker switched once, and says so once.
        for _ in range(3):
            assert get(srv, "/hello.txt").status == 200
        assert srv.log().count("openat2(2)") == 1, srv.log()
    finally:
        srv.cleanup()


def test_kernel_resolve_beneath_answers():
    # The table itself, from the kernel's RESOLVE_BENEATH: what the walk is held to.
    srv = build()
    try:
        assert answers(srv) == EXPECTED
        assert "openat2(2)" not in srv.log()
    finally:
        srv.cleanup()


def test_walk_when_openat2_is_missing():
    check(ENOSYS, "openat2(2) is not available")


def test_walk_when_a_seccomp_filter_refuses_openat2():
    check(EPERM, "openat2(2) was refused (EPERM)")


def test_walk_holds_under_a_directory_swapped_for_a_symlink():
    # A directory replaced by a symlink to outside between requests: the walk re-checks every
    # component with O_NOFOLLOW, so the next request finds a symlink it refuses.
    srv = build(ENOSYS)
    try:
        assert get(srv, "/sub/deep/page.html").status == 200
        sub = os.path.join(srv.root, "sub")
        os.rename(sub, os.path.join(srv.root, "sub-moved"))
        os.mkdir(os.path.join(srv.dir, "deep"))
        with open(os.path.join(srv.dir, "deep", "page.html"), "w") as f:
            f.write("TOP SECRET\n")
        os.chmod(os.path.join(srv.dir, "deep", "page.html"), 0o644)
        os.symlink(srv.dir, sub)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:   # past the file cache's validity window
            r = get(srv, "/sub/deep/page.html")
            assert b"TOP SECRET" not in r.body, r
            if r.status != 200:
                break
            time.sleep(0.2)
        assert r.status == 403, r
    finally:
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(run(globals()))
