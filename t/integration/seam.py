"""The seam configuration (seam.conf.in) brought up for a test: every bundled module at once, two
TLS virtual hosts (b.test requires client certificates; HTTP/2 by ALPN), a cleartext HTTP/2 (h2c)
listener, the signed API in front of the Flask app
under Debian's gunicorn, uploads, downloads, status, health, a PROXY-protocol listener and
real_ip_from, compression everywhere and a third-party body filter on the proxy.  test_seam.py runs the attacks of docs/security.md against it."""
import base64
import os
import pwd
import shutil
import subprocess

from dnsutil import DNS
from harness import IS_ROOT, Server, free_port, module_dir_with_tests
from redisutil import Redis, settled
from test_proxy import App
from tlsutil import CA

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "seam.conf.in")
SECRET = base64.b64decode("uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==")

_CA = []
_APP = []
_REDIS = []
_DNS = []
NONCE_PREFIX = "seam:nonce:"
APP_NAME = "app.seam.test"   # the application's upstream is given by name, which dns() answers


def ca():
    if not _CA:
        ca_ = CA()
        _CA.append((ca_, ca_.issue("a.test", ["www.a.test"]), ca_.issue("b.test", ["*.b.test"]),
                    ca_.issue("alice", client=True)))
    return _CA[0]


def app():
    if not _APP or _APP[0].proc is None:
        _APP[:] = [App("seam")]
    return _APP[0]


def redis():
    """One redis-server for the seam tests of a file, its fleet settled (its epoch long past)."""
    if not _REDIS or _REDIS[0].proc is None:
        _REDIS[:] = [Redis()]
        settled(_REDIS[0], NONCE_PREFIX)
    return _REDIS[0]


def dns():
    """One dnsmasq for the seam tests of a file: APP_NAME is 127.0.0.1."""
    if not _DNS:
        _DNS.append(DNS())
    _DNS[0].set({APP_NAME: ["127.0.0.1"]})
    return _DNS[0]


def stop_app():
    for a in _APP:
        a.stop()
    for r in _REDIS:
        r.cleanup()
    _REDIS[:] = []
    for d in _DNS:
        d.cleanup()
    _DNS[:] = []


class Seam(Server):
    def __init__(self, extra_locations="", start=True, nonces="redis"):
        super().__init__(workers=2)
        self.ca, a, b, self.alice = ca()
        self.app = app()
        self.redis = redis()
        self.dns = dns()
        self.nonces = nonces
        self.plain_port = self.port
        self.tls_port = free_port()
        self.pp_port = free_port()
        self.h2c_port = free_port()
        self.listen = ["127.0.0.1:%d" % self.port, "127.0.0.1:%d tls" % self.tls_port,
                       "127.0.0.1:%d proxy_protocol" % self.pp_port, "127.0.0.1:%d h2c" % self.h2c_port]
        self.extra_locations = extra_locations
        # the bundled modules and the test ones: examples/sub_filter is a third-party body filter
        self.module_dir = module_dir_with_tests(self.dir)
        user = "www-data" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name
        self.user = user
        for sub in ("site", "uploads", "downloads"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        if IS_ROOT:
            pw = pwd.getpwnam(user)
            for path in (os.path.join(self.root, "uploads"), os.path.join(self.dir, "tmp")):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self.file("site/index.html", "<h1>the seam site</h1>\n")
        self.file("site/spa/index.html", "<main>spa</main>\n")
        self.file("site/spa/app.js", "app();\n")
        self.file("downloads/report.csv", "a,b\n1,2\n")
        self.certs = {}
        for name, (cert, key, _) in (("a", a), ("b", b)):
            self.certs[name + "_cert"] = os.path.join(self.dir, name + ".pem")
            self.certs[name + "_key"] = os.path.join(self.dir, name + ".key")
            shutil.copy(cert, self.certs[name + "_cert"])
            shutil.copy(key, self.certs[name + "_key"])
            os.chmod(self.certs[name + "_key"], 0o600)
        self.htpasswd = os.path.join(self.dir, "htpasswd")
        hashed = subprocess.run(["htpasswd", "-nbB", "alice", "staff password"], stdout=subprocess.PIPE,
                                check=True, timeout=60).stdout.decode().strip()
        with open(self.htpasswd, "w") as f:
            f.write(hashed + "\n")
        os.chmod(self.htpasswd, 0o600)
        self.sign_key = os.path.join(self.dir, "app-1.key")
        with open(self.sign_key, "w") as f:
            f.write(base64.b64encode(SECRET).decode() + "\n")
        os.chmod(self.sign_key, 0o600)
        self.write_config()
        if start:
            self.start()

    def config_text(self):
        if not hasattr(self, "sign_key"):
            return super().config_text()
        with open(TEMPLATE) as f:
            text = f.read()
        values = {
            "PLAIN_PORT": self.port, "TLS_PORT": self.tls_port, "PP_PORT": self.pp_port, "USER": self.user,
            "H2C_PORT": self.h2c_port,
            "DIR": self.dir, "ROOT": self.root, "MODULES": self.module_dir, "APP_PORT": self.app.port,
            "A_CERT": self.certs["a_cert"], "A_KEY": self.certs["a_key"], "B_CERT": self.certs["b_cert"],
            "B_KEY": self.certs["b_key"], "CLIENT_CA": self.ca.cert, "SIGN_KEY": self.sign_key,
            "EXTRA_LOCATIONS": self.extra_locations, "HTPASSWD": self.htpasswd,
            "REDIS_PORT": self.redis.port, "DNS_PORT": self.dns.port, "APP_NAME": APP_NAME,
            "NONCE_STORE": ('sign_nonce_store { entries = 4096 }' if self.nonces == "shm" else
                            'sign_nonce_store { backend = "redis"  redis = "127.0.0.1:%d"  prefix = "%s" }'
                            % (self.redis.port, NONCE_PREFIX)),
        }
        for k, v in values.items():
            text = text.replace("@%s@" % k, str(v))
        assert "@" not in text.replace("@method", "").replace("@target", ""), text
        return text

    def seen(self):
        """What reached the application: [method, raw target, body sha256] per request."""
        import json
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/_seen" % self.app.port, timeout=10) as r:
            return json.loads(r.read())["seen"]
