"""emutest.py: start/stop databox-emulator and talk to it, for every test.

The one launcher of the emulator and the helpers that the emulator smoke
test, the conformance test and the integration tests (through
tests/integration/harness.py) share. Standard library only.

  - Emulator: a world (generated or given) in its own directory, the
    emulator started with its own state directory, ready once
    emulator.json appears (bounded), stopped with SIGTERM (then SIGKILL)
    and its directory removed on stop. With persist=True it can be
    stopped (halt(), or kill() as a crash) and started again (start(),
    restart()) on the same ports with the same CA, orders, operations and
    tokens. https() sends a request to a real
    Azure host name through 127.0.0.1:port: the TLS SNI and the Host
    header carry the real name, the emulator's CA is the only trust
    anchor. imds() talks to the managed identity listener; admin() and
    admin_status() to the admin API (counters, request log, faults).
  - gen_world(): run gen-world.py, bounded, and return the world.
  - die_with_parent(): preexec_fn that makes a child die with the test
    (die_with_parent_here(): only from the main thread, see there).
  - make_cert(): a self-signed RSA certificate and key made with openssl.
  - in_namespaces() and namespace_hosts(): run a script again inside
    fresh network and mount namespaces where the real Azure host names
    resolve to 127.0.0.1, for peers that must talk to the real names
    (the SDK conformance test, the bench).
  - Checks: the check counter of the script-style tests (smoke.py,
    sdk_python.py).
  - Sanitizers (scripts/test --asan builds the emulator and the mount with
    ASan and UBSan): sanitizer_env() is what a child needs to report the
    way scripts/test asks, sanitizer_report() tells from an exit status
    and an output whether a sanitizer reported, and every report found is
    kept in SANITIZER_REPORTS. Emulator.stop() checks the emulator's and
    raises AssertionError on a report, so a test cannot pass over one.
"""
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse

PY = "/usr/bin/python3"
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


# The variables that tell ASan, LSan and UBSan how to report (scripts/test).
SANITIZER_VARS = ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS")
# The exit statuses scripts/test --asan gives a sanitizer report (ASan and
# LSan 86, UBSan 87), and LSan's own default.
SANITIZER_EXITS = (86, 87, 23)
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
		     "SUMMARY: UndefinedBehaviorSanitizer", "SUMMARY: AddressSanitizer")
# Every sanitizer report seen by this process: (what, excerpt).
SANITIZER_REPORTS = []


def sanitizer_env():
	"""The sanitizer variables of this process's environment, for a child
	started with an environment of its own."""
	return {k: os.environ[k] for k in SANITIZER_VARS if k in os.environ}


def sanitizer_report(what, returncode, text):
	"""Did the process what, which exited with returncode (None: still
	running or unknown) and printed text, make a sanitizer report? The
	report (what, excerpt) is recorded in SANITIZER_REPORTS and returned,
	else None."""
	text = text or ""
	hit = None
	for m in SANITIZER_MARKERS:
		i = text.find(m)
		if i >= 0 and (hit is None or i < hit):
			hit = i
	if hit is None and returncode not in SANITIZER_EXITS:
		return None
	start = max(0, text.rfind("\n", 0, hit) if hit is not None else len(text) - 3000)
	excerpt = "%s exited %s; sanitizer report:\n%s" % (what, returncode, text[start:start + 6000])
	SANITIZER_REPORTS.append((what, excerpt))
	return excerpt


def die_with_parent():
	"""preexec_fn: SIGTERM the child when the test process dies, even by
	SIGKILL (a ctest timeout), so no emulator or mount outlives its test.
	The kernel sends it when the thread that forked the child ends, not the
	process: a child started from a short-lived thread (a fault that
	restarts the emulator) would die with that thread, so callers pass it
	only from the main thread (die_with_parent_here()); the others are
	stopped by their test's cleanup."""
	_LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def die_with_parent_here():
	"""die_with_parent when called from the main thread, else None (a
	preexec_fn cannot tell: in the child every thread is the main one)."""
	return die_with_parent if threading.current_thread() is threading.main_thread() else None


def in_namespaces(script, argv, name, timeout):
	"""Run script --inside argv in fresh net+mount namespaces (unshare) and
	return its exit status: 77 (skipped) when namespaces cannot be made,
	1 when it outlives timeout seconds (its whole group is killed)."""
	probe = subprocess.run(["unshare", "--net", "--mount", "true"], stderr=subprocess.PIPE)
	if probe.returncode != 0:
		print("%s: skipped, cannot create namespaces: %s" % (name, probe.stderr.decode().strip()))
		return 77
	cmd = ["unshare", "--net", "--mount", "--fork", "--kill-child", "--",
	       PY, os.path.abspath(script), "--inside"] + list(argv)
	p = subprocess.Popen(cmd, start_new_session=True)
	try:
		return p.wait(timeout=timeout)
	except subprocess.TimeoutExpired:
		os.killpg(p.pid, signal.SIGKILL)
		p.wait()
		print("%s: timed out after %d s" % (name, timeout))
		return 1


def namespace_hosts(hosts, addresses=()):
	"""Inside in_namespaces(): bring lo up with the extra addresses (an
	"a.b.c.d/32" each) and bind-mount an /etc/hosts where every name in hosts
	is 127.0.0.1. Returns the hosts file's path (the caller removes it)."""
	subprocess.run(["/usr/sbin/ip", "link", "set", "lo", "up"], check=True)
	for a in addresses:
		subprocess.run(["/usr/sbin/ip", "addr", "add", a, "dev", "lo"], check=True)
	fd, path = tempfile.mkstemp(prefix="dbxemu-hosts-")
	with os.fdopen(fd, "w") as f:
		f.write("127.0.0.1 localhost\n::1 localhost\n")
		for h in hosts:
			f.write("127.0.0.1 %s\n" % h)
	subprocess.run(["mount", "--bind", path, "/etc/hosts"], check=True)
	return path


def gen_world(script, args=(), timeout=120):
	"""The world gen-world.py prints for args, as a dict."""
	p = subprocess.run([PY, script] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			   stdin=subprocess.DEVNULL, timeout=timeout)
	if p.returncode != 0:
		raise RuntimeError("gen-world.py %s exited %d: %s" % (
			" ".join(args), p.returncode, p.stderr.decode(errors="replace").strip()))
	return json.loads(p.stdout)


_gen_world = gen_world  # Emulator's gen_world argument hides the name


def make_cert(directory, name, password=None, cn=None):
	"""A self-signed RSA-2048 certificate and its key (encrypted with password
	when given) made with the openssl command: (certificate path, key path)."""
	key = os.path.join(directory, name + ".key")
	crt = os.path.join(directory, name + ".pem")
	protect = ["-passout", "pass:" + password] if password else ["-nodes"]
	subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048"] + protect +
		       ["-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + (cn or name)],
		       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
		       stdin=subprocess.DEVNULL, timeout=60)
	return crt, key


def _set_arg(argv, name, value):
	"""argv with option name set to value (replaced, or appended)."""
	argv = list(argv)
	if name in argv:
		argv[argv.index(name) + 1] = str(value)
	else:
		argv += [name, str(value)]
	return argv


class Checks:
	"""check(cond, what, detail): print "ok   what", or raise AssertionError;
	count says how many passed."""

	def __init__(self):
		self.count = 0

	def __call__(self, cond, what, detail=""):
		if not cond:
			raise AssertionError("FAILED: %s %s" % (what, detail))
		self.count += 1
		print("ok   %s" % what, flush=True)


class Response:
	def __init__(self, status, headers, body):
		self.status = status
		self.headers = headers
		self.body = body

	def header(self, name):
		for k, v in self.headers:
			if k.lower() == name.lower():
				return v
		return None

	def json(self):
		return json.loads(self.body.decode()) if self.body else None

	def __repr__(self):
		return "<%d %s>" % (self.status, self.body[:300])


class _Conn(http.client.HTTPSConnection):
	def __init__(self, host, port, context, timeout):
		super().__init__(host, 443, context=context, timeout=timeout)
		self._real_port = port

	def connect(self):
		sock = socket.create_connection(("127.0.0.1", self._real_port), self.timeout)
		self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Emulator:
	"""databox-emulator on a world in its own directory.

	world: a dict, or None to run gen_world(gen_world, gen_args). directory:
	where world.json, state/ and emulator.log go; by default a fresh one,
	removed on stop. log_file: the emulator's output goes to emulator.log
	(log_tail() reads it) instead of this process's stdout. Nothing runs
	until start() (or with); stop() (or the end of with) ends it."""

	def __init__(self, binary, world=None, gen_world=None, gen_args=(), extra_args=(),
		     port=0, timeout=30, directory=None, log_file=False, persist=False):
		self.binary = binary
		self.own_dir = directory is None
		self.dir = directory or tempfile.mkdtemp(prefix="dbxemu-")
		self.state = os.path.join(self.dir, "state")
		self.world_path = os.path.join(self.dir, "world.json")
		self.log_path = os.path.join(self.dir, "emulator.log") if log_file else None
		self.extra_args = list(extra_args) + (["--persist"] if persist else [])
		self.listen_port = port
		self.timeout = timeout
		self.proc = None
		self.info = None
		self.sanitizer_checked = False
		try:
			self.world = world if world is not None else _gen_world(gen_world, gen_args)
			os.makedirs(self.state, exist_ok=True)
			with open(self.world_path, "w") as f:
				json.dump(self.world, f)
		except BaseException:
			self.stop()
			raise

	def start(self):
		"""Start the emulator and wait (bounded) until it listens. After a
		halt() or kill() it comes back on the same three ports; with
		--persist (persist=True) also with the same CA and state. A restart
		first checks the run before it for a sanitizer report."""
		report = self.check_sanitizer()
		if report:
			raise AssertionError(report)
		argv = [self.binary, "--world", self.world_path, "--state-dir", self.state,
			"--port", str(self.listen_port)] + self.extra_args
		if self.info is not None:
			argv[argv.index("--port") + 1] = str(self.info["https_port"])
			argv = _set_arg(argv, "--admin-port", self.info["admin_port"])
			if self.info.get("imds_port"):
				argv = _set_arg(argv, "--imds-port", self.info["imds_port"])
		try:
			os.unlink(os.path.join(self.state, "emulator.json"))  # a killed run's
		except FileNotFoundError:
			pass
		try:
			out = open(self.log_path, "a") if self.log_path else None
			try:
				self.sanitizer_checked = False
				self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
							     stderr=subprocess.STDOUT if out else None,
							     preexec_fn=die_with_parent_here())
			finally:
				if out:
					out.close()
			info = os.path.join(self.state, "emulator.json")
			deadline = time.monotonic() + self.timeout
			while True:
				if self.proc.poll() is not None:
					raise RuntimeError("emulator exited with %d: %s" % (self.proc.returncode,
											  self.log_tail()))
				try:
					with open(info) as f:
						self.info = json.load(f)
					break
				except (OSError, ValueError):
					pass
				if time.monotonic() > deadline:
					raise RuntimeError("emulator did not start in %ds: %s" % (self.timeout,
												self.log_tail()))
				time.sleep(0.05)
			self.port = self.https_port = self.info["https_port"]
			self.admin_port = self.info["admin_port"]
			self.imds_port = self.info.get("imds_port")
			self.cafile = self.info.get("cafile") or os.path.join(self.state, "ca.pem")
			self.ctx = ssl.create_default_context(cafile=self.cafile)
		except BaseException:
			self.stop()
			raise
		return self

	def log_tail(self, n=2000):
		"""The end of emulator.log (empty without log_file)."""
		if not self.log_path:
			return ""
		try:
			with open(self.log_path, errors="replace") as f:
				return f.read()[-n:]
		except OSError:
			return ""

	def stop(self):
		"""SIGTERM, then SIGKILL after 10 s (30 s under a sanitizer, whose
		leak check runs at exit); remove the directory if it is ours. Raises
		AssertionError, once everything is cleaned up, when the emulator
		made a sanitizer report (its exit status or its log)."""
		grace = 30 if sanitizer_env() else 10
		if self.proc is not None and self.proc.poll() is None:
			self.proc.send_signal(signal.SIGTERM)
			try:
				self.proc.wait(grace)
			except subprocess.TimeoutExpired:
				self.proc.kill()
				self.proc.wait(10)
		report = self.check_sanitizer()
		if self.own_dir:
			shutil.rmtree(self.dir, ignore_errors=True)
		if report:
			raise AssertionError(report)

	def check_sanitizer(self):
		"""The emulator's sanitizer report once it has exited (see
		sanitizer_report), checked once; None when there is none."""
		if self.proc is None or self.proc.poll() is None or self.sanitizer_checked:
			return None
		self.sanitizer_checked = True
		text = ""
		if self.log_path:
			try:
				with open(self.log_path, errors="replace") as f:
					text = f.read()
			except OSError:
				pass
		return sanitizer_report("databox-emulator", self.proc.returncode, text)

	close = stop

	def kill(self):
		"""Kill abruptly (SIGKILL), as a crash or a network cut would look."""
		if self.proc is not None and self.proc.poll() is None:
			self.proc.kill()
			self.proc.wait(10)

	def halt(self):
		"""Stop the process (SIGTERM, then SIGKILL after 10 s) and keep the
		directory, for a later start() on the same ports."""
		if self.proc is not None and self.proc.poll() is None:
			self.proc.send_signal(signal.SIGTERM)
			try:
				self.proc.wait(10)
			except subprocess.TimeoutExpired:
				self.proc.kill()
				self.proc.wait(10)

	def restart(self, kill=False, down_s=0.0):
		"""halt() (or kill() when kill), stay down down_s seconds, start()
		again on the same ports; returns self."""
		if kill:
			self.kill()
		else:
			self.halt()
		if down_s > 0:
			time.sleep(down_s)
		return self.start()

	def running(self):
		return self.proc is not None and self.proc.poll() is None

	def __enter__(self):
		if self.proc is None:
			self.start()
		return self

	def __exit__(self, *exc):
		self.stop()

	# ---- the world ----
	def client(self):
		return self.world["clients"][0]

	def jobs(self):
		return self.world["jobs"]

	# ---- Azure side ----
	def https(self, host, method, path, headers=None, body=None, timeout=10):
		conn = _Conn(host, self.port, self.ctx, timeout)
		try:
			hdrs = dict(headers or {})
			if isinstance(body, (dict, list)):
				body = json.dumps(body)
				hdrs.setdefault("Content-Type", "application/json")
			conn.request(method, path, body=body, headers=hdrs)
			r = conn.getresponse()
			return Response(r.status, r.getheaders(), r.read())
		finally:
			conn.close()

	def url(self, url, method="GET", headers=None, body=None):
		u = urllib.parse.urlsplit(url)
		path = u.path + ("?" + u.query if u.query else "")
		return self.https(u.hostname, method, path, headers, body)

	def token(self, resource="https://management.azure.com/.default", client=None):
		c = client or self.world["clients"][0]
		form = urllib.parse.urlencode({
			"grant_type": "client_credentials", "client_id": c["client_id"],
			"client_secret": c["client_secret"], "scope": resource})
		r = self.https("login.microsoftonline.com", "POST",
			       "/%s/oauth2/v2.0/token" % c["tenant_id"],
			       {"Content-Type": "application/x-www-form-urlencoded"}, form)
		if r.status != 200:
			raise RuntimeError("token: %r" % r)
		return r.json()["access_token"]

	# ---- IMDS listener (plain HTTP) ----
	def imds(self, path, headers=None, host="127.0.0.1"):
		conn = http.client.HTTPConnection(host, self.imds_port, timeout=10)
		try:
			conn.request("GET", path, headers=dict(headers or {}))
			r = conn.getresponse()
			return Response(r.status, r.getheaders(), r.read())
		finally:
			conn.close()

	# ---- admin side (plain HTTP on loopback) ----
	def admin_status(self, method, path, body=None, timeout=30):
		"""(HTTP status, decoded JSON or None). body: a dict or list is sent
		as JSON, a str or bytes as it is."""
		conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
		try:
			hdrs = {}
			if body is not None and not isinstance(body, (str, bytes)):
				body = json.dumps(body)
				hdrs["Content-Type"] = "application/json"
			conn.request(method, path, body=body, headers=hdrs)
			r = conn.getresponse()
			raw = r.read()
			return r.status, (json.loads(raw) if raw.strip() else None)
		finally:
			conn.close()

	def admin(self, method, path, body=None, timeout=30):
		"""The decoded JSON answer (or None); an HTTP error status raises."""
		status, data = self.admin_status(method, path, body, timeout)
		if status >= 400:
			raise RuntimeError("admin %s %s: %d %r" % (method, path, status, data))
		return data

	def counters(self):
		return self.admin("GET", "/admin/counters")

	def arm_count(self):
		return self.counters()["by_service"].get("arm", 0)

	def path_count(self, method, path, host="management.azure.com"):
		"""Requests counted for one path (without query)."""
		return self.counters()["by_path"].get("%s %s%s" % (method, host, path), 0)

	def reset_counters(self):
		self.admin("POST", "/admin/counters/reset", {})

	def requests(self):
		r = self.admin("GET", "/admin/requests")
		if isinstance(r, dict):
			r = r.get("requests", r.get("value", []))
		return r

	def reset_log(self):
		"""Empty the request log and zero the counters."""
		self.admin("POST", "/admin/requests/reset", {})
		self.reset_counters()

	def fault(self, **rule):
		return self.admin("POST", "/admin/faults", rule)

	def clear_faults(self):
		self.admin("DELETE", "/admin/faults")
