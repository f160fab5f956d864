"""dnsmasq for the tests: on a free loopback port, answering only from an addresses file that it
re-reads on SIGHUP, with a TTL of 1 s."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile

from harness import free_port, helper_output, helper_stop, IS_ROOT, wait_for

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


class DNS:
    """dnsmasq answering only from its addresses file, on a loopback port."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dnsmasq-test-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.hosts = os.path.join(self.dir, "hosts")
        self.set({})
        self.log = open(os.path.join(self.dir, "dnsmasq.log"), "wb")
        args = [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--addn-hosts=" + self.hosts,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--port=%d" % self.port, "--local-ttl=1",
                "--no-daemon", "--log-facility=-", "--pid-file=" + os.path.join(self.dir, "pid")]
        if IS_ROOT:
            args.append("--user=root")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        assert wait_for(self.answering, timeout=15), "dnsmasq did not start: " + self.output()

    def answering(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            # a query for "x." (type A): any answer says it listens
            s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01x\x00\x00\x01\x00\x01",
                     ("127.0.0.1", self.port))
            return len(s.recv(512)) > 0
        except OSError:
            return False
        finally:
            s.close()

    def set(self, names):
        """names: {name: [ip, ...]}; a running dnsmasq re-reads it on SIGHUP."""
        with open(self.hosts + ".tmp", "w") as f:
            for name, ips in names.items():
                for ip in ips:
                    f.write("%s %s\n" % (ip, name))
        os.chmod(self.hosts + ".tmp", 0o644)
        os.rename(self.hosts + ".tmp", self.hosts)
        if getattr(self, "proc", None) is not None:
            self.proc.send_signal(signal.SIGHUP)

    def output(self):
        return helper_output(self.log)

    def cleanup(self):
        helper_stop(self.proc, self.log, self.dir)
