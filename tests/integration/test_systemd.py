"""Running databoxfs as a service: the systemd unit and the fstab example of
contrib/systemd (README.md, "Running it as a service"; the man page,
docs/databoxfs.8).

- The installed unit (as CMake configured it) passes systemd-analyze
  verify, its Documentation= page included, with no warning.
- Its ExecStart line, as written (the program, the mountpoint and the
  credential file pointed at this test's; the emulator's cafile and
  connect_to added), mounts with a stand-in NOTIFY_SOCKET: READY=1 arrives
  from the mount's own pid once the mount answers, and its ExecStop line
  unmounts it and ends the process with status 0.
- While the ARM token cannot be had (Entra answers 503), the mount is up
  but says only STATUS=... waiting; READY=1 follows once Entra is back.
- The fstab example's line, pointed at this test, mounts with mount(8),
  and systemd-fstab-generator turns it into an automount.
"""

import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import unittest

import harness

UNIT = os.environ.get("DBX_SYSTEMD_UNIT") or os.path.join(harness.REPO, "build", "contrib",
							   "databoxfs.service")
FSTAB = os.path.join(harness.REPO, "contrib", "systemd", "fstab.example")
MAN = os.path.join(harness.REPO, "docs", "databoxfs.8")
GENERATOR = "/lib/systemd/system-generators/systemd-fstab-generator"


def unit_lines(path):
	"""{key: [values]} of the unit's assignments (all sections)."""
	out = {}
	with open(path) as f:
		for line in f:
			line = line.strip()
			if line and not line.startswith(("#", ";", "[")):
				k, _, v = line.partition("=")
				out.setdefault(k, []).append(v)
	return out


class Notifications:
	"""A stand-in for systemd's notification socket: an AF_UNIX datagram
	socket (a path, or abstract when abstract is set) that receives each
	datagram with its sender's pid (SO_PASSCRED)."""

	def __init__(self, directory, abstract=False):
		self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
		if abstract:
			name = "dbx-notify-%d-%s" % (os.getpid(), os.path.basename(directory))
			self.sock.bind("\0" + name)
			self.address = "@" + name
		else:
			self.address = os.path.join(directory, "notify")
			self.sock.bind(self.address)

	def receive(self, timeout):
		"""(text, sender pid) of the next datagram; AssertionError after timeout s."""
		self.sock.settimeout(timeout)
		try:
			data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
		except socket.timeout:
			raise AssertionError("no notification within %d s" % timeout) from None
		pid = None
		for level, kind, payload in anc:
			if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
				pid = struct.unpack("iII", payload[:12])[0]
		return data.decode(), pid

	def stop(self):
		self.sock.close()


class Service(harness.Cleanup, unittest.TestCase):
	@classmethod
	def setUpClass(cls):
		cls.world = harness.gen_world(orders=3, seed=83)
		cls.emu = harness.Emulator(cls.world).start()
		job = cls.world["jobs"][0]
		cls.order = harness.split_job_id(job["id"])
		cls.status = job["properties"]["status"] + "\n"
		cls.unit = unit_lines(UNIT)

	@classmethod
	def tearDownClass(cls):
		cls.emu.stop()

	def setUp(self):
		super().setUp()
		self.emu.clear_faults()
		c = self.emu.client()
		self.credfile = os.path.join(self.tmp, "databox.env")
		fd = os.open(self.credfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
		with os.fdopen(fd, "w") as f:
			f.write("AZURE_TENANT_ID=%s\nAZURE_CLIENT_ID=%s\nAZURE_CLIENT_SECRET=%s\n" %
				(c["tenant_id"], c["client_id"], c["client_secret"]))
		self.emu_opts = "cafile=%s,connect_to=::127.0.0.1:%d" % (self.emu.cafile,
									 self.emu.https_port)

	def here(self, text, mnt):
		"""A line of the unit or fstab pointed at this test's mountpoint and credential file."""
		return text.replace("/mnt/databox", mnt).replace("/etc/databoxfs/databox.env",
								 self.credfile)

	def exec_start(self, mnt):
		"""The unit's ExecStart argv, as written but for the paths, plus the emulator's options."""
		(line,) = self.unit["ExecStart"]
		argv = shlex.split(self.here(line, mnt))
		self.assertTrue(os.path.isabs(argv[0]) and argv[0].endswith("/databoxfs"), argv[0])
		return [harness.databoxfs_path()] + argv[1:-1] + ["-o", self.emu_opts, argv[-1]]

	def start(self, notify):
		"""The ExecStart line in a harness.Mount (for its cleanup), started with no AZURE_*
		in its environment and NOTIFY_SOCKET set, without waiting for the mount."""
		m = self.track(harness.Mount(self.emu))
		m.argv = self.exec_start(m.path)
		for k in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
			del m.env[k]
		m.env["NOTIFY_SOCKET"] = notify.address
		with open(m.stderr_path, "w") as errf:
			m.proc = subprocess.Popen(m.argv, stdin=subprocess.DEVNULL, stdout=errf,
						  stderr=errf, env=m.env,
						  preexec_fn=harness.die_with_parent)
		return m

	def test_unit_shape(self):
		u = self.unit
		self.assertEqual(u["Type"], ["notify"])
		self.assertEqual(u["Restart"], ["on-failure"])
		self.assertIn("-f", shlex.split(u["ExecStart"][0]), "Type=notify needs the foreground")
		timeout = re.search(r"\btimeout=(\d+)", u["ExecStart"][0])
		self.assertTrue(timeout, "ExecStart sets no timeout=")
		self.assertGreater(int(u["TimeoutStartSec"][0]), int(timeout.group(1)))
		mountpoint = shlex.split(u["ExecStart"][0])[-1]
		self.assertEqual(shlex.split(u["ExecStop"][0])[-2:], ["-u", mountpoint])
		self.assertIn("network-online.target", u["After"][0])
		self.assertNotIn("AZURE_CLIENT_SECRET", open(UNIT).read())

	def test_unit_verifies(self):
		"""systemd-analyze verify, with the program at the build's path and
		MANPATH holding docs/databoxfs.8 for Documentation=man:databoxfs(8)."""
		if not shutil.which("systemd-analyze"):
			self.skipTest("systemd-analyze is not installed")
		man8 = os.path.join(self.tmp, "man", "man8")
		os.makedirs(man8)
		shutil.copy(MAN, man8)
		with open(UNIT) as f:
			text = f.read()
		(line,) = self.unit["ExecStart"]
		prog = shlex.split(line)[0]
		path = os.path.join(self.tmp, "databoxfs.service")
		with open(path, "w") as f:
			f.write(text.replace(prog, harness.databoxfs_path()))
		p = harness.run(["systemd-analyze", "verify", path], timeout=60,
				env=dict(os.environ, MANPATH=os.path.join(self.tmp, "man")))
		self.assertEqual((p.returncode, p.stderr.strip()), (0, ""), p.stdout)

	def test_ready_after_mount_answers(self):
		notify = self.track(Notifications(self.tmp))
		m = self.start(notify)
		text, pid = notify.receive(60)
		# Whatever came first, READY=1 is there only once the mount answers.
		mounted = harness.is_mounted(m.path)
		self.assertIn("READY=1", text.split("\n"), text)
		self.assertTrue(mounted, "READY=1 before the mount was in the mount table")
		self.assertEqual(pid, m.proc.pid, "the notification is not from the main process")
		self.assertEqual(harness.cat(self, m.p(*self.order, "status")).decode(), self.status)
		(stop,) = self.unit["ExecStop"]
		p = harness.run(shlex.split(self.here(stop, m.path)), timeout=30)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(m.wait_exit(30), 0, m.stderr()[-2000:])
		self.assertFalse(harness.is_mounted(m.path))

	def test_ready_waits_for_token(self):
		"""Entra down at start: the mount starts anyway (docs/formats.md,
		"Options") but is not ready; an abstract socket name this time."""
		self.emu.fault(service="entra", status=503)
		notify = self.track(Notifications(self.tmp, abstract=True))
		m = self.start(notify)
		text, pid = notify.receive(90)
		self.assertNotIn("READY=1", text.split("\n"), text)
		self.assertIn("STATUS=mounted, waiting for a token", text)
		self.assertEqual(pid, m.proc.pid)
		self.assertTrue(harness.is_mounted(m.path))
		self.emu.clear_faults()
		while "READY=1" not in text.split("\n"):
			text, _ = notify.receive(60)
		self.assertEqual(harness.cat(self, m.p(*self.order, "status")).decode(), self.status)

	def fstab_line(self, mnt):
		lines = [l for l in open(FSTAB) if l.strip() and not l.startswith("#")]
		self.assertEqual(len(lines), 1, "fstab.example should hold one active line")
		fields = self.here(lines[0], mnt).split()
		for opt in ("noauto", "x-systemd.automount", "_netdev"):
			self.assertIn(opt, fields[3].split(","))
		fields[3] += "," + self.emu_opts
		return fields

	def test_fstab_line_mounts(self):
		"""The example line through mount(8) and mount.fuse3, in a private
		mount namespace where /usr/local/bin holds the build's databoxfs."""
		if not shutil.which("mount.fuse3", path="/usr/sbin:/sbin") or not shutil.which("unshare"):
			self.skipTest("mount.fuse3 or unshare is not installed")
		mnt = os.path.join(self.tmp, "m")
		os.mkdir(mnt)
		fstab = os.path.join(self.tmp, "fstab")
		with open(fstab, "w") as f:
			f.write(" ".join(self.fstab_line(mnt)) + "\n")
		status = os.path.join(mnt, *self.order, "status")
		script = """set -e
mount -t tmpfs none /usr/local/bin
ln -s "$DBX" /usr/local/bin/databoxfs
mount -T "$FSTAB" "$MNT"
i=0; until grep -q " $MNT .* - fuse.databoxfs " /proc/self/mountinfo; do
	i=$((i + 1)); [ $i -lt 200 ] || { echo "not mounted" >&2; exit 1; }; sleep 0.1; done
cat "$STATUS"
umount "$MNT"
"""
		env = {"PATH": "/usr/sbin:/sbin:/usr/bin:/bin", "HOME": self.tmp, "LANG": "C",
		       "DBX": harness.databoxfs_path(), "MNT": mnt, "FSTAB": fstab, "STATUS": status}
		env.update(harness.emutest.sanitizer_env())
		p = harness.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
				env=env, timeout=90)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(p.stdout, self.status)
		self.assertFalse(harness.is_mounted(mnt))

	def test_fstab_line_automounts(self):
		"""systemd-fstab-generator makes the line an automount that waits for
		the network, and the mount unit keeps the options for mount(8)."""
		if not os.access(GENERATOR, os.X_OK):
			self.skipTest("systemd-fstab-generator is not installed")
		fields = self.fstab_line("/mnt/databox")
		fstab = os.path.join(self.tmp, "fstab")
		with open(fstab, "w") as f:
			f.write(" ".join(fields) + "\n")
		dirs = [os.path.join(self.tmp, d) for d in ("normal", "early", "late")]
		for d in dirs:
			os.mkdir(d)
		p = harness.run([GENERATOR] + dirs, env=dict(os.environ, SYSTEMD_FSTAB=fstab),
				timeout=30)
		self.assertEqual(p.returncode, 0, p.stderr)
		out = dirs[0]
		self.assertTrue(os.path.exists(os.path.join(out, "mnt-databox.automount")),
				os.listdir(out))
		self.assertTrue(os.path.exists(os.path.join(out, "remote-fs.target.requires",
							   "mnt-databox.automount")))
		with open(os.path.join(out, "mnt-databox.mount")) as f:
			unit = f.read()
		self.assertIn("Type=fuse.databoxfs", unit)
		self.assertIn("credential_file=%s" % self.credfile, unit)


if __name__ == "__main__":
	harness.main()
