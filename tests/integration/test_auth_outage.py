"""Entra down while the cached token is still valid: the failed proactive
refresh keeps the old token, and reads go on as before (promptly: a read
must not wait for a refresh that keeps failing while its token is good).
Once the token has expired, reads fail with Entra's reason; when Entra is
back, the next read gets a new token and succeeds."""

import time

import authtest
import harness

LIFETIME = 40      # refresh from LIFETIME / 2 on
PROMPT = 3.0       # seconds a read with a valid cached token may take


class Outage(authtest.AuthTest):
	def timed_cat(self, path):
		t = time.monotonic()
		p = harness.run(["cat", path], timeout=120)
		return p, time.monotonic() - t

	def test_entra_outage_near_expiry(self):
		emu, job, m = self.lifetime_mount(seed=61, lifetime=LIFETIME, timeout=20)
		m.start()
		path = authtest.order_path(m, job, "status")
		want = job["properties"]["status"] + "\n"
		t0 = time.monotonic()
		p, _ = self.timed_cat(path)
		self.assertEqual(p.stdout, want)
		emu.fault(service="entra", status=503)

		# The token (issued at ~t0) is valid until t0 + LIFETIME.
		slow = []
		while time.monotonic() - t0 < LIFETIME - 6:
			started = time.monotonic() - t0
			p, took = self.timed_cat(path)
			if p.returncode != 0 or took > PROMPT:
				slow.append("t=%.1fs: rc %d in %.1fs %s" % (started, p.returncode, took,
									   p.stderr.strip()[-80:]))
			time.sleep(1)
		refused = [r for r in emu.requests() if r["service"] == "entra" and r["status"] == 503]
		harness.log("outage: %d refused refreshes; slow or failed reads: %s" % (len(refused), slow))
		self.assertTrue(refused, "no refresh was attempted before expiry")
		self.assertIn("using the cached one", m.stderr())
		# Today (backend/cred/auth.c) each request past the refresh point retries the
		# refresh inline through the token stack's whole retry budget (~10 s at
		# timeout=20), so reads block and then fail before the token expires.
		self.assertEqual(slow, [], "reads with a valid cached token were slow or failed "
				 "while Entra was down")

		# Expired and Entra still down: the read fails with Entra's reason.
		time.sleep(max(0.0, LIFETIME + 1 - (time.monotonic() - t0)))
		p, took = self.timed_cat(path)
		self.assertNotEqual(p.returncode, 0, "read succeeded with an expired token")
		self.assertIn("AADSTS", m.stderr())

		# Entra back: the next read gets a new token (once the half second a
		# failure is held has passed: docs/formats.md, "Reads").
		emu.clear_faults()
		time.sleep(0.6)
		p, took = self.timed_cat(path)
		self.assertEqual((p.returncode, p.stdout), (0, want), p.stderr)


if __name__ == "__main__":
	harness.main()
