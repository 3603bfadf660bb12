"""Shared helpers of the credential integration tests (test_auth_*.py).

They build on harness.py (emulator and mount lifecycle) and add what the
credential tests need:
  - auth_mount(): a Mount whose environment is exactly what the test gives
    (no inherited AZURE_* variables), with -o credential=NAME, and with the
    managed identity endpoint 169.254.169.254:80 sent either to the
    emulator's IMDS listener or to a closed loopback port (never to a real
    IMDS, never to the emulator's HTTPS port by the catch-all connect_to);
  - start_refused(): start a mount that must refuse to start; returns its
    exit status and stderr, and fails the test if it mounted;
  - make_cert(): a real self-signed RSA certificate and key (openssl);
  - FakeAz: a stand-in `az` on PATH that logs in with its own stored
    credentials (a file next to it, as ~/.azure is for the real CLI), gets
    a real token from the emulator, prints what `az account get-access-token
    --output json` prints, and records its argv, its environment's names,
    and raw copies of its /proc/self/cmdline and /proc/self/environ;
  - token_requests()/stats helpers over the emulator's request log;
  - AuthTest: the base class of the credential tests (a class emulator,
    and mounts, stand-in az and emulators per test, all stopped after it).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid

import harness
import oracle

IMDS = "169.254.169.254:80"
ARM_AUD = "https://management.azure.com/"
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]+)?")
BASE_PATH = "/usr/bin:/bin"


def small_world(seed, orders=3):
	return harness.gen_world(orders=orders, subscriptions=1, resource_groups=1, seed=seed)


def base_env(tmp, path=BASE_PATH):
	"""An environment with no credential in it at all."""
	return {"PATH": path, "HOME": tmp, "LANG": "C"}


def secret_env(client):
	"""The environment source's variables for client's secret."""
	return {"AZURE_TENANT_ID": client["tenant_id"], "AZURE_CLIENT_ID": client["client_id"],
		"AZURE_CLIENT_SECRET": client["client_secret"]}


def auth_mount(emu, credential="auto", env=None, imds="closed", cache_ttl=2, timeout=20,
	       debug=False, extra=(), app_service=False):
	"""A harness.Mount (not started) with exactly env (plus PATH/HOME/LANG
	unless given) and -o credential=credential. imds: "emu" sends
	169.254.169.254:80 to the emulator's IMDS listener, "closed" to a
	closed loopback port. app_service: keep 127.0.0.1:<imds_port> (an
	IDENTITY_ENDPOINT) out of the catch-all that sends every other
	host:port to the emulator's HTTPS port."""
	if imds == "emu":
		imds_to = "127.0.0.1:%d" % emu.imds_port
	else:
		imds_to = "127.0.0.1:%d" % harness.closed_port()
	# curl takes the first matching connect_to: IMDS before the catch-all.
	connect_to = ["%s:%s" % (IMDS, imds_to)]
	if app_service:
		connect_to.append("127.0.0.1:%d:127.0.0.1:%d" % (emu.imds_port, emu.imds_port))
	connect_to.append("::127.0.0.1:%d" % emu.https_port)
	m = harness.Mount(emu, cache_ttl=cache_ttl, timeout=timeout, connect_to=connect_to,
			  debug=debug, extra=extra)
	m.argv = [a.replace("credential=auto", "credential=%s" % credential) for a in m.argv]
	env_full = base_env(m.tmp)
	env_full.update(env or {})
	m.env = env_full
	return m


def start_refused(tc, mnt, timeout=30):
	"""Start mnt, which must refuse to start: (exit status, stderr).
	Fails tc (after unmounting) when it mounted instead or did not exit."""
	with open(mnt.stderr_path, "w") as errf:
		mnt.proc = subprocess.Popen(mnt.argv, stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
					    env=mnt.env, preexec_fn=harness.die_with_parent)
	deadline = time.monotonic() + timeout
	mounted = False
	while time.monotonic() < deadline:
		if mnt.proc.poll() is not None:
			break
		if harness.is_mounted(mnt.path):
			mounted = True
			break
		time.sleep(0.05)
	if mounted or mnt.proc.poll() is None:
		listing = harness.run(["ls", mnt.path], timeout=30)
		mnt.unmount()
		mnt.wait_exit(5)
		log = mnt.stderr()[-1500:]
		mnt.stop()
		tc.fail("databoxfs %s instead of refusing to start (then ls: rc %d, %s); its log: %s" %
			("mounted" if mounted else "kept running", listing.returncode,
			 listing.stderr.strip(), log))
	rc = mnt.proc.returncode
	tc.assertFalse(harness.is_mounted(mnt.path), "a mount was left behind at %s" % mnt.path)
	tc.assertNotIn(os.path.realpath(mnt.path), harness.mounted_points())
	return rc, mnt.stderr()


def read_order(tc, mnt, job):
	"""cat every file of job through the mount; each equals the oracle."""
	sub, rg, name = harness.split_job_id(job["id"])
	want = oracle.expected_files(job)
	for f in oracle.FILES:
		data = harness.cat(tc, mnt.p(sub, rg, name, f))
		if f in want:
			tc.assertEqual(data, want[f], "%s/%s" % (name, f))
	return sub, rg, name


def order_path(mnt, job, f="status"):
	sub, rg, name = harness.split_job_id(job["id"])
	return mnt.p(sub, rg, name, f)


# ---- the emulator's view ----

def token_stats(emu):
	return emu.admin("GET", "/admin/tokens/stats")


def token_requests(emu):
	"""Token requests in the request log: Entra (grant_type set) and managed identity."""
	return [r for r in emu.requests()
		if r.get("service") == "imds" or r.get("grant_type") or
		r.get("path", "").endswith("/token")]


def arm_requests(emu):
	return [r for r in emu.requests() if r.get("service") == "arm"]


def stats_delta(before, after, key):
	out = {}
	for k, v in (after.get(key) or {}).items():
		d = v - (before.get(key) or {}).get(k, 0)
		if d:
			out[k] = d
	return out


# ---- credentials made by the tests ----

def make_cert(directory, name, password=None):
	"""emutest.make_cert(): a self-signed RSA-2048 certificate and its key
	(encrypted with password when given), as (cert_pem, key_pem) text."""
	crt, key = harness.emutest.make_cert(directory, name, password, cn="databoxfs-test-" + name)
	with open(crt) as f:
		cert_pem = f.read()
	with open(key) as f:
		key_pem = f.read()
	return cert_pem, key_pem


def write_file(path, text, mode=0o600):
	with open(path, "w") as f:
		f.write(text)
	os.chmod(path, mode)
	return path


FAKE_AZ = r'''#!/usr/bin/python3
# Stand-in for the Azure CLI, written by tests/integration/authtest.py.
# Logs in with the credentials stored next to it (as the real az keeps them
# in ~/.azure), gets a real token from the emulator and prints what
# `az account get-access-token --output json` prints.
import datetime, http.client, json, os, socket, ssl, sys, time, urllib.parse
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "az-profile.json")) as f:
    cfg = json.load(f)
n = len(os.listdir(cfg["calls"]))
rec = {"argv": sys.argv[1:], "env_names": sorted(os.environ), "cwd": os.getcwd(),
       "pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0),
       "stdin": os.readlink("/proc/self/fd/0")}
for part in ("cmdline", "environ"):
    with open("/proc/self/" + part, "rb") as f, \
         open(os.path.join(cfg["calls"], "%03d.%s" % (n, part)), "wb") as g:
        g.write(f.read())
def done(code, out, err=""):
    rec["exit"] = code
    rec["stdout"] = out
    with open(os.path.join(cfg["calls"], "%03d.json" % n), "w") as g:
        json.dump(rec, g)
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.exit(code)
if cfg.get("mode") == "logged_out":
    done(1, "", "ERROR: Please run 'az login' to setup account.\n")
if cfg.get("mode") == "hang":
    # Hang, with a grandchild holding stdout too: only killing the group ends it.
    kid = os.fork()
    if kid == 0:
        time.sleep(120)
        os._exit(0)
    rec["grandchild"] = kid
    with open(os.path.join(cfg["calls"], "%03d.json" % n), "w") as g:
        json.dump(rec, g)
    time.sleep(120)
    sys.exit(0)
args = sys.argv[1:]
if args[:2] != ["account", "get-access-token"] or "--resource" not in args:
    done(2, "", "ERROR: the stand-in only knows account get-access-token --resource\n")
resource = args[args.index("--resource") + 1]
tenant = args[args.index("--tenant") + 1] if "--tenant" in args else cfg["tenant_id"]
ctx = ssl.create_default_context(cafile=cfg["cafile"])
sock = socket.create_connection(("127.0.0.1", cfg["port"]), 10)
conn = http.client.HTTPSConnection("login.microsoftonline.com", 443, timeout=10, context=ctx)
conn.sock = ctx.wrap_socket(sock, server_hostname="login.microsoftonline.com")
body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": cfg["client_id"],
                               "client_secret": cfg["client_secret"],
                               "scope": resource.rstrip("/") + "/.default"})
conn.request("POST", "/%s/oauth2/v2.0/token" % tenant, body=body,
             headers={"Content-Type": "application/x-www-form-urlencoded",
                      "User-Agent": "fake-az/1.0"})
resp = conn.getresponse()
answer = json.loads(resp.read() or b"{}")
if resp.status != 200:
    done(1, "", "ERROR: AADSTS: %s\n" % answer.get("error"))
exp = int(time.time()) + int(answer["expires_in"])
doc = {"accessToken": answer["access_token"], "expiresOn":
       datetime.datetime.fromtimestamp(exp).strftime("%Y-%m-%d %H:%M:%S.%f"),
       "expires_on": exp, "subscription": cfg.get("subscription", ""),
       "tenant": tenant, "tokenType": "Bearer"}
if cfg.get("mode") == "old":
    del doc["expires_on"]  # CLIs before 2.54 print only the naive local expiresOn
out = json.dumps(doc, indent=2) + "\n"
done(0, out)
'''


class FakeAz:
	"""A stand-in az in its own directory (put .dir first on PATH)."""

	def __init__(self, emu, client=None, mode="ok", subscription=""):
		client = client or emu.client()
		self.dir = tempfile.mkdtemp(prefix="dbx-az-")
		self.calls_dir = os.path.join(self.dir, "calls")
		os.mkdir(self.calls_dir)
		self.bin = os.path.join(self.dir, "bin")
		os.mkdir(self.bin)
		profile = {"port": emu.https_port, "cafile": emu.cafile, "tenant_id": client["tenant_id"],
			   "client_id": client["client_id"], "client_secret": client["client_secret"],
			   "calls": self.calls_dir, "mode": mode, "subscription": subscription}
		write_file(os.path.join(self.bin, "az-profile.json"), json.dumps(profile))
		write_file(os.path.join(self.bin, "az"), FAKE_AZ, 0o755)

	def path(self, rest=BASE_PATH):
		return self.bin + ":" + rest

	def calls(self):
		"""The records of every finished run, in order."""
		out = []
		for n in sorted(os.listdir(self.calls_dir)):
			if n.endswith(".json"):
				with open(os.path.join(self.calls_dir, n)) as f:
					out.append(json.load(f))
		return out

	def raw(self):
		"""Raw bytes of every run's /proc/self/cmdline and environ: {file name: bytes}."""
		out = {}
		for n in sorted(os.listdir(self.calls_dir)):
			if n.endswith((".cmdline", ".environ")):
				with open(os.path.join(self.calls_dir, n), "rb") as f:
					out[n] = f.read()
		return out

	def tokens(self):
		toks = []
		for c in self.calls():
			if c.get("exit") == 0:
				toks.append(json.loads(c["stdout"])["accessToken"])
		return toks

	def stop(self):
		shutil.rmtree(self.dir, ignore_errors=True)


def register_client(emu, tenant_id, **fields):
	"""Add an app registration to the emulator; returns it (with a fresh client id)."""
	c = {"tenant_id": tenant_id, "client_id": str(uuid.uuid4())}
	c.update(fields)
	emu.admin("POST", "/admin/clients", c)
	return c


class AuthTest(harness.Cleanup, unittest.TestCase):
	"""Base of the credential tests. With SEED set, one emulator for the
	class on class_world() (small_world(SEED, ORDERS)): cls.world, cls.emu,
	cls.client (the world's first app), cls.job (its order number JOB). Per test (harness.Cleanup, so all
	of it is stopped in tearDown): mount() an auth_mount, not started;
	fake_az() a FakeAz; emulator() an emulator of the test's own."""

	SEED = None
	ORDERS = 3
	JOB = 0

	@classmethod
	def class_world(cls):
		return small_world(cls.SEED, cls.ORDERS)

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		if cls.SEED is not None:
			cls.world = cls.class_world()
			cls.emu = harness.Emulator(cls.world).start()
			cls.client = cls.world["clients"][0]
			cls.job = cls.world["jobs"][cls.JOB]

	@classmethod
	def tearDownClass(cls):
		try:
			if cls.SEED is not None:
				cls.emu.stop()
		finally:
			super().tearDownClass()

	def mount(self, credential, env=None, emu=None, **kw):
		"""auth_mount(emu or self.emu, credential, env, **kw), stopped in tearDown."""
		return self.track(auth_mount(emu or self.emu, credential, env, **kw))

	def fake_az(self, emu=None, **kw):
		return self.track(FakeAz(emu or self.emu, **kw))

	def emulator(self, world):
		"""A started emulator of this test's own on world."""
		return self.track(harness.Emulator(world).start())

	def lifetime_mount(self, seed, lifetime, timeout):
		"""An emulator of the test's own that issues tokens living lifetime
		seconds, and an environment-secret mount on it with cache_ttl=0 (not
		started): (emulator, its world's first order, mount)."""
		world = small_world(seed=seed)
		emu = self.emulator(world)
		emu.admin("POST", "/admin/tokens/lifetime", {"seconds": lifetime})
		m = self.mount("env", secret_env(emu.client()), emu=emu, cache_ttl=0, timeout=timeout)
		return emu, world["jobs"][0], m
