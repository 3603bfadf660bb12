"""emutest.py: start/stop databox-emulator and talk to it, for the tests.

Standard library only. Emulator() generates a world (or takes one), starts
the emulator with its own state directory, waits for emulator.json and
kills the process (and removes the directory) on close. imds() talks to
the managed identity listener. https() sends a
request to a real Azure host name through 127.0.0.1:port: the TLS SNI and
the Host header carry the real name, the emulator's CA is the only trust
anchor.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse

PY = "/usr/bin/python3"
PR_SET_PDEATHSIG = 1


def _die_with_parent():
	"""Child side of Popen: take SIGTERM when the test process dies."""
	try:
		import ctypes
		ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
	except OSError:
		pass


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
	def __init__(self, binary, world=None, gen_world=None, gen_args=(), extra_args=(),
		     port=0, timeout=20):
		self.dir = tempfile.mkdtemp(prefix="dbxemu-")
		self.proc = None
		try:
			self.world_path = os.path.join(self.dir, "world.json")
			if world is None:
				out = subprocess.run([PY, gen_world] + list(gen_args), check=True,
						     stdout=subprocess.PIPE, timeout=30).stdout
				with open(self.world_path, "wb") as f:
					f.write(out)
			else:
				with open(self.world_path, "w") as f:
					json.dump(world, f)
			with open(self.world_path) as f:
				self.world = json.load(f)
			state = os.path.join(self.dir, "state")
			self.proc = subprocess.Popen(
				[binary, "--world", self.world_path, "--state-dir", state,
				 "--port", str(port)] + list(extra_args), preexec_fn=_die_with_parent)
			info = os.path.join(state, "emulator.json")
			deadline = time.time() + timeout
			while not os.path.exists(info):
				if self.proc.poll() is not None:
					raise RuntimeError("emulator exited with %d" % self.proc.returncode)
				if time.time() > deadline:
					raise RuntimeError("emulator did not start in %ds" % timeout)
				time.sleep(0.05)
			with open(info) as f:
				self.info = json.load(f)
			self.port = self.info["https_port"]
			self.admin_port = self.info["admin_port"]
			self.imds_port = self.info.get("imds_port")
			self.cafile = self.info["cafile"]
			self.ctx = ssl.create_default_context(cafile=self.cafile)
		except BaseException:
			self.close()
			raise

	def close(self):
		if self.proc and self.proc.poll() is None:
			self.proc.send_signal(signal.SIGTERM)
			try:
				self.proc.wait(10)
			except subprocess.TimeoutExpired:
				self.proc.kill()
				self.proc.wait()
		shutil.rmtree(self.dir, ignore_errors=True)

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()

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

	# ---- admin side ----
	def admin(self, method, path, body=None):
		conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=30)
		try:
			data = body if body is None or isinstance(body, (str, bytes)) else json.dumps(body)
			conn.request(method, path, body=data)
			r = conn.getresponse()
			raw = r.read()
			return r.status, (json.loads(raw) if raw else None)
		finally:
			conn.close()
