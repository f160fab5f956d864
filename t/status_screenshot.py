#!/usr/bin/env python3
"""Renders the status page in headless Chromium (Debian package chromium), not part of make check:
starts the built server with 2 workers, puts a minute of varying load on it so the chart has a
shape, and writes a PNG.

    HTTPD_BIN=build/src/httpd HTTPD_MODULE_DIR=build/modules/.libs \\
        python3 t/status_screenshot.py /tmp/status.png
"""
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration"))
from harness import Server, get  # noqa: E402


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "status.png"
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    srv = Server(workers=2)
    srv.locations = ('location "/server-status" { handler = "status" }\n'
                     'location "/" { handler = "static" root = "%s" }\n' % srv.root)
    srv.write_config()
    srv.file("a.txt", b"A" * 1024)
    srv.start()
    try:
        end = time.monotonic() + seconds

        def load(rate_shape):
            while time.monotonic() < end:
                phase = (end - time.monotonic()) / seconds
                get(srv, "/a.txt")
                time.sleep(rate_shape(phase))
        threads = [threading.Thread(target=load, args=(lambda p: 0.001 + 0.02 * abs(0.5 - p),)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=900,760", "--screenshot=" + os.path.abspath(out),
                        "http://127.0.0.1:%d/server-status" % srv.port],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=True)
        print(out)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    main()
