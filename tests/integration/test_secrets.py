"""Secrets never reach the logs: with -d (debug, everything to stderr) the
client secret and bearer tokens do not appear in what databoxfs prints."""

import re

import harness
import oracle

BEARER_RE = re.compile(r"Bearer\s+[A-Za-z0-9._~+/=-]{8,}")
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


class Secrets(harness.MountedWorld):
	WORLD = {"orders": 4, "subscriptions": 1, "resource_groups": 1, "seed": 29}
	MOUNT = {"debug": True, "cache_ttl": 1}

	def test_debug_log_has_no_secret(self):
		for job in self.world["jobs"]:
			sub, rg, name = harness.split_job_id(job["id"])
			for f in oracle.FILES:
				harness.cat(self, self.mnt.p(sub, rg, name, f))
		self.mnt.unmount()  # databoxfs exits: its stderr is complete
		self.mnt.wait_exit(5)
		text = self.mnt.stderr()
		self.assertGreater(len(text), 200, "debug mode logged (almost) nothing: %r" % text)
		secret = self.emu.client()["client_secret"]
		self.assertNotIn(secret, text, "the client secret is in the log")
		self.assertIsNone(BEARER_RE.search(text), "a bearer token is in the log")
		self.assertIsNone(JWT_RE.search(text), "a JWT is in the log")
		harness.log("debug log: %d bytes, no secret, no token" % len(text))


if __name__ == "__main__":
	harness.main()
