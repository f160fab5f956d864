"""The scoreboard and the status module: exact request counts across workers and reloads,
Prometheus text that Debian's python3-prometheus-client parses and promtool accepts,
OpenMetrics, JSON, Apache's ?auto, the HTML page, the allow list, and a crash report that
names the request the worker was serving."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

from harness import Reader, Server, get, module_dir_with_tests, run, wait_for

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:   # a python3 other than Debian's (pyenv): use Debian's python3-prometheus-client
    import sys
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families


def start(workers=2, extra=""):
    srv = Server(workers=workers)
    srv.module_dir = module_dir_with_tests(srv.dir)
    srv.locations = ('location "/server-status" { handler = "status" %s }\n'
                     'location "/metrics" { handler = "status" format = "prometheus" }\n'
                     'location "/t/" { handler = "testmod" }\n'
                     'location "/" { handler = "static" root = "%s" }\n' % (extra, srv.root))
    srv.write_config()
    srv.file("a.txt", b"AAAA")
    return srv.start()


def scrape(srv, accept=None):
    headers = "Accept: %s\r\n" % accept if accept else ""
    r = get(srv, "/metrics", headers=headers)
    assert r.status == 200, r
    return r


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def requests_total(text):
    return sum(s.value for s in families(text)["httpd_requests"].samples if s.name == "httpd_requests_total")


def test_counts_exact_across_workers_and_reloads_and_parse():
    srv = start()
    try:
        sent = 0
        for batch in range(4):
            for _ in range(25):
                assert get(srv, "/a.txt").status == 200
                sent += 1
            assert get(srv, "/missing").status == 404
            sent += 1
            if batch < 3:
                before = srv.worker_pids()
                srv.signal(signal.SIGHUP)
                assert wait_for(lambda: "reloaded" in srv.log() and srv.log().count("reloaded") >= batch + 1)
                assert wait_for(lambda: not set(before) & set(srv.worker_pids()), timeout=20)
        # Every answered request counted once, the scrapes before this one included.
        scrapes = [0]

        def settled():
            text = scrape(srv).body.decode()
            scrapes[0] += 1
            return requests_total(text) == sent + scrapes[0] - 1 and text
        text = wait_for(settled, timeout=10)
        assert text, "requests_total never reached %d" % sent
        f = families(text)
        by_code = {}
        for s in f["httpd_requests"].samples:
            by_code[s.labels["code"]] = by_code.get(s.labels["code"], 0) + s.value
        assert by_code["404"] == 4 and by_code["200"] >= 100, by_code
        count = [s.value for s in f["httpd_request_duration_seconds"].samples
                 if s.name == "httpd_request_duration_seconds_count"][0]
        inf = [s.value for s in f["httpd_request_duration_seconds"].samples
               if s.name == "httpd_request_duration_seconds_bucket" and s.labels["le"] == "+Inf"][0]
        assert count == inf == requests_total(text), (count, inf)
        reloads = {s.labels["result"]: s.value for s in f["httpd_reloads"].samples}
        assert reloads == {"ok": 3.0, "failed": 0.0}, reloads
        assert f["httpd_build_info"].samples[0].labels["abi"] == "2"
        workers = f["httpd_worker_requests"].samples
        assert len(workers) >= 2 and all("pid" in s.labels and "slot" in s.labels for s in workers), workers
        # promtool (Debian's prometheus package) agrees it is valid exposition.
        promtool = shutil.which("promtool")
        assert promtool, "promtool (Debian package prometheus) is a test dependency"
        check = subprocess.run([promtool, "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
        assert check.returncode == 0, check.stdout.decode()
    finally:
        srv.cleanup()


def test_openmetrics_json_auto_and_html():
    srv = start(workers=2)
    try:
        for _ in range(5):
            get(srv, "/a.txt")
        r = scrape(srv, accept="application/openmetrics-text; version=1.0.0")
        assert r.header("Content-Type").startswith("application/openmetrics-text"), r
        text = r.body.decode()
        assert text.endswith("# EOF\n") and "# TYPE httpd_requests counter" in text, text[-300:]
        assert scrape(srv).header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
        r = get(srv, "/server-status?format=json")
        doc = json.loads(r.body)
        assert r.header("Content-Type") == "application/json"
        assert len(doc["workers"]) == 2, doc
        for w in doc["workers"]:
            assert set(("slot", "pid", "generation", "state", "requests", "connections")) <= set(w), w
            assert w["state"] == "serving"
        assert doc["totals"]["requests"] >= 5 and doc["totals"]["status"]["200"] >= 5, doc
        auto = get(srv, "/server-status?auto").body.decode()
        fields = dict(line.split(": ", 1) for line in auto.splitlines())
        assert int(fields["Total Accesses"]) >= 7 and fields["Processes"] == "2", fields
        html = get(srv, "/server-status").body.decode()
        assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "<table>" in html, html[:300]
        assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    finally:
        srv.cleanup()


def test_allow_list_uses_the_client_address():
    srv = start(workers=1)
    try:
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        assert Reader(s).response().status == 403
        s.close()
        assert get(srv, "/metrics").status == 200
    finally:
        srv.cleanup()


def test_crash_report_names_the_request_being_served():
    srv = start(workers=1)
    try:
        s = srv.connect()
        s.sendall(b"GET /t/async/timer?ms=20000&why=crash HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.3)
        victim = srv.worker_pids()[0]
        os.kill(victim, signal.SIGABRT)   # as a failed assertion would (ASan builds catch SIGSEGV themselves)
        assert wait_for(lambda: "while serving \"GET /t/async/timer?ms=20000&why=crash\"" in srv.log()), srv.log()
        assert "died by signal 6" in srv.log()
        s.close()
        assert wait_for(lambda: len(srv.worker_pids()) == 1 and victim not in srv.worker_pids(), timeout=15)
        # Its counts stay in the totals; the server answers again.
        assert wait_for(lambda: get(srv, "/a.txt").status == 200)
    finally:
        srv.cleanup()


if __name__ == "__main__":
    raise SystemExit(run(globals()))
