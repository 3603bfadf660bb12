"""Tokens are refreshed before they expire: with the emulator issuing
60-second tokens, three minutes of reads (one every ~0.5 s, cache_ttl=0 so
each one reaches ARM) never see an error or a 401, and the mount asks for
an ARM token a handful of times (refresh at half the lifetime for short
tokens: about every 30 s), never per request and never after one expired."""

import subprocess
import time

import authtest
import harness

LIFETIME = 60
DURATION = 180
PERIOD = 0.5


class Refresh(authtest.AuthTest):
	def test_short_tokens_are_refreshed_ahead(self):
		emu, job, m = self.lifetime_mount(seed=47, lifetime=LIFETIME, timeout=10)
		emu.reset_log()
		before = authtest.token_stats(emu)
		m.start()
		path = authtest.order_path(m, job, "status")
		want = (job["properties"]["status"] + "\n").encode()
		log = []
		failures = []
		reads = 0
		t0 = time.monotonic()
		next_drain = t0 + 20
		while time.monotonic() - t0 < DURATION:
			started = time.monotonic()
			p = subprocess.run(["cat", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
					   timeout=30, stdin=subprocess.DEVNULL)
			reads += 1
			if p.returncode != 0 or p.stdout != want:
				failures.append("t=%.1fs: rc %d %r %s" % (started - t0, p.returncode, p.stdout,
									  p.stderr.decode(errors="replace").strip()))
			if time.monotonic() > next_drain:
				# The log keeps 1000 entries: collect it as we go.
				log += emu.requests()
				emu.admin("POST", "/admin/requests/reset", {})
				next_drain += 20
			time.sleep(max(0.0, PERIOD - (time.monotonic() - started)))
		log += emu.requests()
		after = authtest.token_stats(emu)
		aud = authtest.stats_delta(before, after, "by_audience")
		arm_tokens = [r for r in log if r.get("grant_type") and
			      r.get("scope", "").startswith("https://management.azure.com")]
		times = [r["time"] for r in arm_tokens]
		gaps = [b - a for a, b in zip(times, times[1:])]
		arm = [r for r in log if r["service"] == "arm"]
		unauth = [r for r in arm if r["status"] == 401]
		harness.log("%d reads in %ds, %d ARM requests, %d ARM tokens at gaps %s s, audiences %s" %
			    (reads, DURATION, len(arm), len(arm_tokens), gaps, aud))
		self.assertEqual(failures, [], "reads failed")
		self.assertGreater(reads, 100, "too few reads to mean anything")
		self.assertGreaterEqual(len(arm), reads, "cache_ttl=0 but reads did not all reach ARM")
		self.assertEqual(unauth, [], "ARM saw an expired token")
		self.assertEqual(list(aud), [authtest.ARM_AUD], aud)
		# The emulator's token count is exact; the log can miss a request made
		# between reading it and resetting it, so it gives the gaps only.
		issued = aud[authtest.ARM_AUD]
		self.assertIn(issued - len(arm_tokens), (0, 1), "tokens issued %d, logged %d" %
			      (issued, len(arm_tokens)))
		# First token, then one every ~LIFETIME/2 s: 6 or 7 in 180 s.
		self.assertGreaterEqual(issued, 4, "too few tokens: one must have expired")
		self.assertLessEqual(issued, 8, "refreshed far too often")
		for g in gaps:
			self.assertGreaterEqual(g, LIFETIME / 2 - 3, "refreshed early: gaps %s" % gaps)
			self.assertLess(g, LIFETIME, "a token lived out its lifetime: gaps %s" % gaps)
		self.assertEqual([r for r in arm_tokens if r["status"] != 200], [])
		self.assertEqual([r for r in arm if r["status"] != 200], [])


if __name__ == "__main__":
	harness.main()
