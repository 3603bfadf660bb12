"""The audit trail (docs/formats.md, "Audit trail"), read back from syslog.

The mount runs in a private mount namespace (unshare --mount) whose /dev is
a tmpfs holding the devices it needs, bound from the real /dev, and a
/dev/log that leads to a unix datagram socket this test listens on: what
glibc's syslog(3) sends is what the test reads, and nothing touches the
machine's own /dev or syslog. The test writes through the mount with
nsenter into that namespace.

An applied change gives exactly one LOG_AUTHPRIV|LOG_NOTICE line naming the
order ID, the file, old -> new, the request and correlation IDs and the
credential's principal (the client ID of the service principal in the
environment), and the same line on stderr (-f). No line carries the client
secret or a bearer token. A refused write and a write of the current value
log no audit line.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

import harness
import writes

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
AUTHPRIV_NOTICE = 10 * 8 + 5
DEVICES = ("fuse", "null", "zero", "urandom", "random")


class Audit(writes.WriteWorld):
	@classmethod
	def setUpClass(cls):
		if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
			raise unittest.SkipTest("needs root, unshare and nsenter for a private /dev/log")
		cls.world = cls.make_world()
		cls.emu = harness.Emulator(cls.world).start()
		try:
			cls.start_mount()
		except BaseException:
			cls.emu.stop()
			raise
		cls.learn_world()

	@classmethod
	def start_mount(cls):
		m = harness.Mount(cls.emu, cache_ttl=0, timeout=30, extra=("lro_poll=0.05",))
		cls.mnt = m
		cls.sock_path = os.path.join(m.tmp, "log.sock")
		cls.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		cls.sock.bind(cls.sock_path)
		cls.sock.settimeout(0.2)
		old = os.path.join(m.tmp, "olddev")
		os.mkdir(old)
		binds = "".join("touch /dev/%s && mount --bind %s/%s /dev/%s && " % (d, old, d, d)
				for d in DEVICES)
		script = ("mount --bind /dev %s && mount -t tmpfs -o mode=755 tmpfs /dev && %s"
			  "ln -s %s /dev/log && exec \"$@\"" % (old, binds, cls.sock_path))
		argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
			"sh"] + m.argv
		with open(m.stderr_path, "w") as errf:
			m.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=errf,
						  stderr=errf, env=m.env,
						  preexec_fn=harness.die_with_parent)

		def ready():
			if m.proc.poll() is not None:
				raise AssertionError("databoxfs exited %d: %s" %
						     (m.proc.returncode, m.stderr()[-2000:]))
			try:
				with open("/proc/%d/mounts" % m.proc.pid) as f:
					return (" %s fuse" % m.path) in f.read()
			except OSError:
				return False
		harness.wait_for(ready, 20, "the mount in its namespace")

	@classmethod
	def tearDownClass(cls):
		try:
			p = cls.mnt.proc
			if p.poll() is None:
				p.send_signal(signal.SIGTERM)  # unmounts and exits 0 (test_signals.py)
				try:
					p.wait(timeout=10)
				except subprocess.TimeoutExpired:
					p.kill()
					p.wait(timeout=5)
			cls.sock.close()
			shutil.rmtree(cls.mnt.tmp, ignore_errors=True)
			if cls.mnt in harness._LIVE:
				harness._LIVE.remove(cls.mnt)
		finally:
			cls.emu.stop()

	def ns(self, cmd, timeout=60):
		"""bash -c cmd inside the mount's namespace."""
		return subprocess.run(["nsenter", "-t", str(self.mnt.proc.pid), "-m", "--",
				       "bash", "-c", cmd], stdout=subprocess.PIPE,
				      stderr=subprocess.PIPE, text=True, timeout=timeout,
				      stdin=subprocess.DEVNULL)

	def drain(self, wait=0.0):
		"""The syslog datagrams received so far (waiting up to wait s for one)."""
		out = []
		end = time.monotonic() + wait
		while True:
			try:
				out.append(self.sock.recv(65536).decode(errors="replace"))
			except socket.timeout:
				if out or time.monotonic() >= end:
					return out

	def audit_lines(self, wait=0.0):
		return [m for m in self.drain(wait) if "audit:" in m]

	def test_applied_change_is_logged(self):
		sub, rg, name, d = self.new_order("cm-system")
		old = self.kek_url_of(sub, rg, name)
		url = self.key_url("dbx-key-3072")
		self.drain()
		p = self.ns("echo %s > %s" % (writes.q(url), writes.q(os.path.join(d, "key_url"))))
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)
		lines = self.audit_lines(wait=5)
		self.assertEqual(len(lines), 1, lines)
		line = lines[0]
		harness.log("syslog: " + line)
		self.assertTrue(line.startswith("<%d>" % AUTHPRIV_NOTICE), line)
		self.assertRegex(line, r"databoxfs\[%d\]: audit: " % self.mnt.proc.pid)
		job_id = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s" % (
			sub, rg, name)
		self.assertIn("order=%s " % job_id, line)
		self.assertIn(" file=key_url ", line)
		self.assertIn(' old="%s" -> new="%s" ' % (old, url), line)
		self.assertRegex(line, r" request_id=%s " % UUID)
		self.assertRegex(line, r" correlation_id=%s " % UUID)
		client = self.emu.client()
		self.assertIn('principal="client_id=%s tenant=%s' % (client["client_id"],
								    client["tenant_id"]), line)
		self.assertNotIn(client["client_secret"], line)
		self.assertNotIn("eyJ", line)  # a JWT's first bytes
		self.assertNotIn("Bearer", line)
		# -f: the same line on stderr too.
		payload = line.split("audit: ", 1)[1].strip()
		err = self.mnt.stderr()
		self.assertIn("notice: audit: " + payload, err)
		self.assertNotIn(client["client_secret"], err)

	def test_refused_and_unchanged_are_not_logged(self):
		sub, rg, name, d = self.new_order("cm-system")
		self.drain()
		p = self.ns("echo %s > %s" % (writes.q(self.key_url("no-such-key-here")),
					      writes.q(os.path.join(d, "key_url"))))
		self.assertNotEqual(p.returncode, 0)
		cur = self.kek_url_of(sub, rg, name)
		p = self.ns("echo %s > %s" % (writes.q(cur), writes.q(os.path.join(d, "key_url"))))
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(self.audit_lines(wait=1), [])


if __name__ == "__main__":
	writes.main()
