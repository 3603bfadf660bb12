"""When ARM cannot be reached, reads fail promptly with an error instead of
hanging or showing stale state: a mount pointed at a closed loopback port,
and a mount whose emulator is killed under it."""

import errno
import os
import time
import unittest

import harness

TIMEOUT = 5
ACCEPTED = {errno.EHOSTUNREACH: "EHOSTUNREACH", errno.EIO: "EIO", errno.ETIMEDOUT: "ETIMEDOUT"}

# Ask Python for the errno itself rather than parsing ls/cat messages.
PROBE = r"""
import os, sys
op, path = sys.argv[1], sys.argv[2]
try:
    if op == "ls":
        os.listdir(path)
    else:
        with open(path, "rb") as f:
            f.read()
except OSError as e:
    print(e.errno)
    sys.exit(1)
print(0)
"""


class Unreachable(harness.Cleanup, unittest.TestCase):
	@classmethod
	def setUpClass(cls):
		cls.world = harness.gen_world(orders=4, subscriptions=1, resource_groups=1, seed=17)
		cls.job = cls.world["jobs"][0]
		cls.sub, cls.rg, cls.name = harness.split_job_id(cls.job["id"])

	def start(self, **kw):
		emu = self.track(harness.Emulator(self.world).start())
		mnt = self.track(harness.Mount(emu, **kw).start())
		return emu, mnt

	def fails_promptly(self, op, path):
		"""Run one ls/cat-like syscall in a child; assert an accepted errno in time."""
		t0 = time.monotonic()
		p = harness.run(["/usr/bin/python3", "-c", PROBE, op, path], timeout=TIMEOUT + 30)
		took = time.monotonic() - t0
		code = int(p.stdout.strip() or "-1")
		harness.log("%s %s: errno %s (%s) after %.2fs" %
			    (op, os.path.basename(path) or "/", code,
			     ACCEPTED.get(code, os.strerror(code) if code > 0 else "?"), took))
		self.assertNotEqual(code, 0, "%s %s succeeded with ARM unreachable" % (op, path))
		self.assertIn(code, ACCEPTED, "%s: unexpected errno %s" % (op, os.strerror(code)))
		self.assertLess(took, TIMEOUT + 5, "%s took %.1fs, more than timeout + 5 s" % (op, took))
		return code

	def test_closed_port(self):
		port = harness.closed_port()
		_, mnt = self.start(connect_to=["::127.0.0.1:%d" % port], timeout=TIMEOUT)
		self.fails_promptly("ls", mnt.path)
		self.fails_promptly("cat", mnt.p(self.sub, self.rg, self.name, "status"))

	def test_emulator_killed(self):
		emu, mnt = self.start(cache_ttl=1, timeout=TIMEOUT)
		status = mnt.p(self.sub, self.rg, self.name, "status")
		self.assertEqual(harness.cat(self, status), (self.job["properties"]["status"] + "\n").encode())
		emu.kill()
		time.sleep(1.5)  # past cache_ttl: nothing may be served as live now
		self.fails_promptly("cat", status)
		self.fails_promptly("ls", mnt.p(self.sub))


if __name__ == "__main__":
	harness.main()
