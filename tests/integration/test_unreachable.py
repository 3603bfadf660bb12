"""When ARM cannot be reached, reads fail promptly with the errno table's
answer instead of hanging or showing stale state: a mount pointed at a
closed loopback port, a mount whose emulator is killed under it, and ARM
answering every read with 429 or 503. A read's retries stop after the read
retry budget (5 s, docs/formats.md "Reads"), far inside `timeout`."""

import errno
import os
import time
import unittest

import harness

TIMEOUT = 30
READ_RETRY_S = 5  # DBX_ARM_READ_RETRY_MS
NAMES = {errno.EHOSTUNREACH: "EHOSTUNREACH", errno.EIO: "EIO", errno.EAGAIN: "EAGAIN",
	 errno.ETIMEDOUT: "ETIMEDOUT"}

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

	def fails_promptly(self, op, path, want=errno.EHOSTUNREACH):
		"""Run one ls/cat-like syscall in a child; assert errno want within
		the read retry budget (plus slack for the tries themselves)."""
		t0 = time.monotonic()
		p = harness.run(["/usr/bin/python3", "-c", PROBE, op, path], timeout=TIMEOUT + 30)
		took = time.monotonic() - t0
		code = int(p.stdout.strip() or "-1")
		harness.log("%s %s: errno %s (%s) after %.2fs" %
			    (op, os.path.basename(path) or "/", code,
			     NAMES.get(code, os.strerror(code) if code > 0 else "?"), took))
		self.assertNotEqual(code, 0, "%s %s succeeded with ARM unreachable" % (op, path))
		self.assertEqual(code, want, "%s: errno %s, want %s" % (
			op, NAMES.get(code, code), NAMES[want]))
		self.assertLess(took, READ_RETRY_S + 3,
				"%s took %.1fs, more than the read retry budget + 3 s" % (op, took))
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

	def storm(self, want, recovers=True, **rule):
		"""Every ARM answer replaced per rule: reads give up at the budget."""
		emu, mnt = self.start(cache_ttl=1, timeout=TIMEOUT)
		key_url = mnt.p(self.sub, self.rg, self.name, "key_url")
		harness.cat(self, key_url)
		emu.fault(service="arm", **rule)
		time.sleep(1.5)  # past cache_ttl
		self.fails_promptly("cat", key_url, want)
		self.fails_promptly("ls", mnt.p(self.sub), want)
		if not recovers:
			return
		emu.clear_faults()
		time.sleep(0.6)  # past the failure hold: the next read asks ARM again
		harness.cat(self, key_url)

	def test_throttled_read_waits_within_budget(self):
		# Retry-After 1: the read waits and retries while the waits end
		# inside the budget, then EAGAIN.
		self.storm(errno.EAGAIN, status=429, retry_after="1")

	def test_throttled_read_longer_retry_after(self):
		# A wait past the budget is not begun: EAGAIN at once. (The mount
		# then keeps off ARM for the 10 s it was asked to: no recovery check.)
		self.storm(errno.EAGAIN, recovers=False, status=429, retry_after="10")

	def test_server_errors(self):
		self.storm(errno.EIO, status=503)


if __name__ == "__main__":
	harness.main()
