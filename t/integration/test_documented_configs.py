#!/usr/bin/env python3
"""Every configuration the project shows a user loads with httpd -t: etc/httpd.conf, the demo configuration,
the examples of httpd.conf(5), and the ones in docs/.  Paths in them (roots, certificates, pages, logs) are
mapped into a sandbox made for the test, so the check is of the directives, not of this machine's files."""
import base64
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

from harness import HTTPD, MODULE_DIR, run

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if not os.path.isdir(os.path.join(TOP, "man")):
    TOP = os.environ.get("HTTPD_SRCDIR", TOP)
KEEP = ("/etc/mime.types", "/dev/stdout", "/dev/stderr")


class Sandbox:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="httpd-docs-")
        os.chmod(self.dir, 0o755)
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=example.com"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(self.key, 0o600)

    def path(self, key, value):
        """Where a path of the example goes in the sandbox (made, as the directive needs it)."""
        if value in KEEP or value.startswith("/proc/"):
            return value
        if key == "module_dir":
            return os.path.abspath(MODULE_DIR)
        if key in ("tls_certificate", "tls_client_ca"):
            return self.cert
        if key == "tls_certificate_key":
            return self.key
        mapped = os.path.join(self.dir, "fs", value.lstrip("/"))
        if key in ("root", "temp_dir"):
            os.makedirs(mapped, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(mapped), exist_ok=True)
            if key in ("error_page", "secret_file", "auth_basic_user_file", "tls_ticket_key_file", "password_file") and \
                    not os.path.exists(mapped):
                with open(mapped, "wb") as f:
                    f.write(self.content(key))
                os.chmod(mapped, 0o600 if key != "error_page" else 0o644)
        return mapped

    @staticmethod
    def content(key):
        if key == "secret_file":
            return base64.b64encode(os.urandom(32)) + b"\n"
        if key == "tls_ticket_key_file":
            return os.urandom(80)
        if key == "password_file":
            return b"redis password\n"
        if key == "auth_basic_user_file":
            hashed = subprocess.run(["openssl", "passwd", "-6", "example"], stdout=subprocess.PIPE,
                                    check=True).stdout.strip()
            return b"alice:" + hashed + b"\n"
        return b"page\n"

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def sandboxed(box, text):
    """text with its absolute paths mapped, includes dropped, @PLACEHOLDERS@ filled."""
    text = re.sub(r"(?m)^\s*include\s+.*$", "", text)
    text = re.sub(r"@[A-Z_]+@", lambda m: "/" + m.group(0).strip("@").lower(), text)

    def one(m):
        key = m.group(1) or m.group(3) or ""
        return m.group(0).replace(m.group(2) or m.group(4), box.path(key, m.group(2) or m.group(4)))
    return re.sub(r'(\w+)\s*=\s*"(/[^"]*)"|(error_page)\(\d+,\s*"(/[^"]*)"\)', one, text)


def referenced_blocks(text):
    """The blocks an example names but leaves to the reader: upstreams and limit zones."""
    extra = ""
    for name in set(re.findall(r'upstream\s*=\s*"([^"]+)"', text)):
        if not re.search(r'upstream\s+"%s"\s*{' % re.escape(name), text):
            extra += 'upstream "%s" { server = { "127.0.0.1:9" } }\n' % name
    for kind in ("req", "conn"):
        for name in set(re.findall(r'limit_%s\s+"([^"]+)"' % kind, text)):
            if not re.search(r'limit_%s_zone\s+"%s"' % (kind, re.escape(name)), text):
                extra += 'limit_%s_zone "%s" { key = "$remote_addr"%s }\n' % (
                    kind, name, ' rate = "10r/s"' if kind == "req" else "")
    return extra


def check(box, text, where):
    conf = os.path.join(box.dir, "httpd.conf")
    text = referenced_blocks(text) + text
    # "{ ... }" stands for a block's contents: a return answers for it
    text = sandboxed(box, text.replace("{ ... }", '{ return = "204" }'))
    # the file's own module_dir and pid_file, mapped, come later and win
    text = 'module_dir = "%s"\npid_file = "%s/httpd.pid"\n' % (os.path.abspath(MODULE_DIR), box.dir) + text
    with open(conf, "w") as f:
        f.write(text)
    proc = subprocess.run([HTTPD, "-t", "-f", conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return proc.returncode, proc.stderr.decode(errors="replace") + "\n--- " + where + "\n" + text


def roff_blocks(path):
    """The .nf ... .fi examples of a man page, as plain text."""
    with open(path) as f:
        lines = f.read().split("\n")
    blocks, cur = [], None
    for line in lines:
        if line == ".nf":
            cur = []
        elif line == ".fi" and cur is not None:
            blocks.append("\n".join(cur))
            cur = None
        elif cur is not None:
            if line.startswith("."):
                cur = None   # formatting inside: a synopsis, not an example
                continue
            for a, b in (("\\-", "-"), ("\\e", "\\"), ("\\(dq", '"'), ("\\(aq", "'"), ("\\&", "")):
                line = line.replace(a, b)
            cur.append(line)
    return blocks


def looks_like_config(text):
    return re.search(r'^\s*(location|server|listen|[a-z_]+\s*=)', text, re.M) is not None and "$ " not in text


def test_etc_and_demo_configurations_load():
    box = Sandbox()
    try:
        for name in ("etc/httpd.conf", "etc/demo.conf.in"):
            with open(os.path.join(TOP, name)) as f:
                rc, err = check(box, f.read(), name)
            assert rc == 0, err
    finally:
        box.cleanup()


def test_every_example_of_httpd_conf_5_loads():
    box = Sandbox()
    try:
        blocks = [b for b in roff_blocks(os.path.join(TOP, "man", "httpd.conf.5")) if looks_like_config(b)]
        assert len(blocks) >= 15, len(blocks)
        for i, block in enumerate(blocks):
            # a whole configuration; top-level directives alone (beside a location); a location's part
            attempts = [(block, "as it is"), (block + '\nlocation "/__example" { return = "204" }\n', "beside a location"),
                        ('location "/__example/" {\n' + block + '\n}\n', "in a location"),
                        ('location "/__example/" {\n handler = "static"\n root = "/srv/x"\n' + block + '\n}\n',
                         "in a static location")]
            errors = []
            for text, how in attempts:
                rc, err = check(box, text, "httpd.conf(5) example %d, %s" % (i, how))
                if rc == 0:
                    break
                errors.append(err)
            assert rc == 0, errors[0]
    finally:
        box.cleanup()


def test_configurations_in_docs_load():
    box = Sandbox()
    try:
        found = 0
        for md in sorted(glob.glob(os.path.join(TOP, "docs", "*.md")) + [os.path.join(TOP, "README.md")]):
            with open(md) as f:
                text = f.read()
            blocks = [b for lang, b in re.findall(r"```([a-z]*)\n(.*?)```", text, re.S) if lang in ("", "conf")]
            # a configuration inside a Kubernetes ConfigMap
            blocks += [re.sub(r"(?m)^    ", "", b) for b in re.findall(r"httpd.conf: \|\n((?:    .*\n|\n)+)", text)]
            for block in blocks:
                if 'location "' not in block or "haproxy" in block or "frontend" in block or \
                        re.search(r"(?m)^\s*(head|curl|systemctl|sudo|httpd-sign|apt-get|make|git)\b", block):
                    continue   # not a configuration: commands, or another program's
                found += 1
                rc, err = check(box, block, md)
                assert rc == 0, err
        assert found >= 2, found
    finally:
        box.cleanup()


if __name__ == "__main__":
    sys.exit(run(globals()))
