"""A throwaway CA and server certificates made with the openssl CLI at test time (nothing secret
is kept in the repository), and small TLS client helpers."""
import os
import socket
import ssl
import subprocess
import tempfile


def openssl(*args, stdin=None):
    proc = subprocess.run(["openssl"] + list(args), input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


class CA:
    def __init__(self, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="httpd-ca-")
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        self.serial = 0x1000
        rc, _, err = openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                             "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=httpd test CA")
        assert rc == 0, err

    def issue(self, name, sans=None, client=False, key=None):
        """A certificate for name (and sans); returns (cert path, key path, serial as hex text)."""
        self.serial += 1
        base = os.path.join(self.dir, "%s-%d" % (name.replace("*", "star"), self.serial))
        key = key or base + ".key"
        csr, ext, cert = base + ".csr", base + ".ext", base + ".pem"
        if not os.path.exists(key):
            rc, _, err = openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
            assert rc == 0, err
        os.chmod(key, 0o600)
        rc, _, err = openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=%s/O=httpd tests" % name)
        assert rc == 0, err
        with open(ext, "w") as f:
            if client:
                f.write("extendedKeyUsage=clientAuth\n")
            else:
                f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n"
                        % ",".join("DNS:" + n for n in [name] + (sans or [])))
        rc, _, err = openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                             "-set_serial", str(self.serial), "-days", "2", "-out", cert, "-extfile", ext)
        assert rc == 0, err
        return cert, key, "%X" % self.serial


def context(ca, client_cert=None):
    ctx = ssl.create_default_context(cafile=ca.cert)
    if client_cert:
        ctx.load_cert_chain(*client_cert)
    return ctx


def peer_serial(port, name, ca, host="127.0.0.1"):
    """The serial (hex, upper case) of the certificate the server shows for SNI name."""
    ctx = context(ca)
    ctx.check_hostname = False   # the default certificate answers names it does not carry
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            der = s.getpeercert(binary_form=True)
    rc, out, err = openssl("x509", "-inform", "DER", "-noout", "-serial", stdin=der)
    assert rc == 0, err
    return out.strip().split("=", 1)[1].lstrip("0")


def https_get(port, name, path, ca, host_header=None, client_cert=None, host="127.0.0.1", check_hostname=True):
    """One GET over TLS with SNI name; returns (status, headers dict lower-case, body)."""
    import http.client
    ctx = context(ca, client_cert)
    ctx.check_hostname = check_hostname

    class Conn(http.client.HTTPSConnection):
        def connect(self):
            sock = socket.create_connection((host, port), timeout=20)
            self.sock = ctx.wrap_socket(sock, server_hostname=name)

    conn = Conn(name, port, context=ctx, timeout=20)
    conn.request("GET", path, headers={"Host": host_header or name})
    resp = conn.getresponse()
    body = resp.read()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    return resp.status, headers, body
