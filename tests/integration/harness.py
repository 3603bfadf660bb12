"""Shared harness for the integration tests: real mounts against the emulator.

Every test module imports this file. It starts databox-emulator (with
tests/emulator/emutest.py, the launcher the smoke and conformance tests
use too) on a world made by gen-world.py in a private temporary directory,
mounts databoxfs in the foreground (-f) in the background of the test, and
tears both down in every case (tearDown/tearDownClass, plus an atexit hook
as the last resort), so a failing test leaves no mount, process or
directory behind. Every wait and every subprocess has a bound.

What it holds: Emulator (emutest.Emulator on the build's binary), Mount,
MountedWorld (one emulator and mount per module; expect_errno), Cleanup
(per-test objects stopped after the test; stop_all), gen_world, run,
cat, wait_for, the mount table readers, and main().

Paths of the programs come from the environment, set by CMake:
  DBX_DATABOXFS  $<TARGET_FILE:databoxfs>
  DBX_EMULATOR   $<TARGET_FILE:databox-emulator>
  DBX_GEN_WORLD  tests/emulator/gen-world.py
A module exits 77 (ctest SKIP_RETURN_CODE) only when /dev/fuse is missing.

Sanitizers (scripts/test --asan): the mount and the emulator get the
sanitizer variables of the test's environment whatever environment a test
gives them (Mount.env), and when either one ends, its exit status and
output are checked for a sanitizer report (emutest.sanitizer_report; LSan
checks the mount when it exits after the unmount). A report fails the
stop() that found it and, since cleanups only log what they raise, main()
fails the module too whenever any report was seen.

Always run with /usr/bin/python3 (Debian's Python).
"""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The emulator launcher is shared with the emulator's smoke test and the
# conformance test: tests/emulator/emutest.py.
sys.path.insert(0, os.path.join(REPO, "tests", "emulator"))
import emutest  # noqa: E402
from emutest import die_with_parent  # noqa: E402,F401 - for the test modules

UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)

# Everything started here, torn down at exit if a test forgot or crashed.
_LIVE = []

# Emulator and mount directories of this process live under one directory
# named after its pid, so a run killed with SIGKILL (a ctest timeout) leaves
# one directory that the next run removes (below), not a trail of them.
_ROOT_PREFIX = "dbx-it-"


def _sweep_stale_roots():
	"""Remove the directories of dead test processes (never a mounted one)."""
	tmp = tempfile.gettempdir()
	mounted = None
	for name in os.listdir(tmp):
		if not name.startswith(_ROOT_PREFIX):
			continue
		try:
			pid = int(name[len(_ROOT_PREFIX):].split("-", 1)[0])
			os.kill(pid, 0)
			continue  # its owner still runs
		except ProcessLookupError:
			pass
		except (ValueError, PermissionError):
			continue
		path = os.path.join(tmp, name)
		if mounted is None:
			mounted = mounted_points()
		if any(m == path or m.startswith(path + "/") for m in mounted):
			continue
		shutil.rmtree(path, ignore_errors=True)


_ROOT = None


def _root():
	global _ROOT
	if _ROOT is None:
		_sweep_stale_roots()
		_ROOT = tempfile.mkdtemp(prefix="%s%d-" % (_ROOT_PREFIX, os.getpid()))
	return _ROOT


def private_tmp(prefix):
	"""A fresh directory under this process's root (removed at exit)."""
	return tempfile.mkdtemp(prefix=prefix, dir=_root())


def _program(env, fallback):
	path = os.environ.get(env) or os.path.join(REPO, fallback)
	if not os.path.exists(path):
		raise RuntimeError("%s not found (set %s)" % (path, env))
	return path


def databoxfs_path():
	return _program("DBX_DATABOXFS", "build/fs/databoxfs")


def emulator_path():
	return _program("DBX_EMULATOR", "build/tests/emulator/databox-emulator")


def gen_world_path():
	return _program("DBX_GEN_WORLD", "tests/emulator/gen-world.py")


def log(msg):
	print(msg, file=sys.stderr, flush=True)


def run(argv, timeout=60, check=False, **kw):
	"""subprocess.run with a bound, text output captured."""
	p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
			   timeout=timeout, stdin=subprocess.DEVNULL, **kw)
	if check and p.returncode != 0:
		raise AssertionError("%s exited %d: %s" % (argv, p.returncode, p.stderr.strip()))
	return p


def wait_for(cond, timeout, what, interval=0.05):
	"""Poll cond() until it returns a true value; fail after timeout seconds."""
	deadline = time.monotonic() + timeout
	while True:
		v = cond()
		if v:
			return v
		if time.monotonic() > deadline:
			raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
		time.sleep(interval)


def _unescape_mountinfo(s):
	return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounted_points():
	"""Mount points from /proc/self/mountinfo (never touches the mounts)."""
	out = set()
	with open("/proc/self/mountinfo") as f:
		for line in f:
			fields = line.split()
			if len(fields) > 4:
				out.add(_unescape_mountinfo(fields[4]))
	return out


def is_mounted(path):
	return os.path.realpath(path) in mounted_points()


def closed_port():
	"""A loopback TCP port nobody listens on (bound, then closed)."""
	s = socket.socket()
	s.bind(("127.0.0.1", 0))
	port = s.getsockname()[1]
	s.close()
	return port


def split_job_id(job_id):
	"""(subscription, resource group, name) of an ARM job id, case-insensitive."""
	seg = job_id.strip("/").split("/")
	low = [x.lower() for x in seg]
	sub = seg[low.index("subscriptions") + 1]
	rg = seg[low.index("resourcegroups") + 1]
	return sub, rg, seg[-1]


def gen_world(orders, subscriptions=2, resource_groups=3, seed=1, page_size=20, demo=False):
	args = ["--orders", str(orders), "--subscriptions", str(subscriptions),
		"--resource-groups", str(resource_groups), "--seed", str(seed),
		"--page-size", str(page_size)]
	return emutest.gen_world(gen_world_path(), args + (["--demo"] if demo else []))


class Emulator(emutest.Emulator):
	"""emutest.Emulator on databoxfs's build, in this process's private
	directory, its output in emulator.log, stopped at exit at the latest."""

	def __init__(self, world, latency_ms=None, page_size=None, tmp=None):
		args = ["--admin-port", "0"]
		if latency_ms is not None:
			args += ["--latency-ms", str(latency_ms)]
		if page_size is not None:
			args += ["--page-size", str(page_size)]
		super().__init__(emulator_path(), world=world, extra_args=args,
				 directory=tmp or private_tmp("emu-"), log_file=True)
		self.own_dir = tmp is None
		self.tmp = self.dir
		_LIVE.append(self)

	def stop(self):
		try:
			super().stop()
		finally:
			if self in _LIVE:
				_LIVE.remove(self)


class Mount:
	"""databoxfs -f running in the background on a fresh mount point."""

	def __init__(self, emu, cache_ttl=2, timeout=20, cafile=True, connect_to=None,
		     debug=False, extra=(), env=None):
		self.emu = emu
		self.tmp = private_tmp("mnt-")
		self.path = os.path.join(self.tmp, "m")
		os.mkdir(self.path)
		self.stderr_path = os.path.join(self.tmp, "databoxfs.stderr")
		if connect_to is None:
			# curl's any-host form: every host:port goes to the emulator.
			connect_to = ["::127.0.0.1:%d" % emu.https_port]
		opts = ["cloud=AzureCloud", "credential=auto", "api_version=2025-07-01",
			"cache_ttl=%s" % cache_ttl, "timeout=%s" % timeout]
		if cafile is True:
			opts.append("cafile=%s" % emu.cafile)
		elif cafile:
			opts.append("cafile=%s" % cafile)
		opts += ["connect_to=%s" % c for c in connect_to]
		opts += list(extra)
		self.argv = [databoxfs_path(), "-f"] + (["-d"] if debug else []) + \
			["-o", ",".join(opts), self.path]
		c = emu.client()
		self.env = {
			"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
			"HOME": self.tmp,
			"LANG": "C",
			"AZURE_TENANT_ID": c["tenant_id"],
			"AZURE_CLIENT_ID": c["client_id"],
			"AZURE_CLIENT_SECRET": c["client_secret"],
		}
		if env:
			self.env.update(env)
		self.proc = None
		self.returncode = None
		self.sanitizer_checked = False
		_LIVE.append(self)

	@property
	def env(self):
		"""The mount's environment (the dict itself: a test may change it):
		what the test set, plus the sanitizer variables of this process
		(scripts/test --asan sets them) that the test did not set itself."""
		for k, v in emutest.sanitizer_env().items():
			self._env.setdefault(k, v)
		return self._env

	@env.setter
	def env(self, value):
		self._env = value

	def start(self):
		with open(self.stderr_path, "w") as errf:
			self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=errf,
						     stderr=errf, env=self.env, preexec_fn=die_with_parent)

		def ready():
			if self.proc.poll() is not None:
				raise AssertionError("databoxfs exited %d before mounting: %s" %
						     (self.proc.returncode, self.stderr()[-2000:]))
			return is_mounted(self.path)

		wait_for(ready, 20, "mount of %s" % self.path)
		return self

	def stderr(self):
		try:
			with open(self.stderr_path, errors="replace") as f:
				return f.read()
		except OSError:
			return ""

	def p(self, *parts):
		return os.path.join(self.path, *parts)

	def unmount(self):
		"""fusermount3 -u; returns its exit status (lazy unmount as last resort)."""
		rc = None
		if is_mounted(self.path):
			rc = run(["fusermount3", "-u", self.path], timeout=15).returncode
			if rc != 0 and is_mounted(self.path):
				run(["fusermount3", "-uz", self.path], timeout=15)
		return rc

	def wait_exit(self, timeout=5):
		try:
			self.returncode = self.proc.wait(timeout=timeout)
		except subprocess.TimeoutExpired:
			return None
		return self.returncode

	def check_sanitizer(self):
		"""The mount's sanitizer report once it has exited (exit status
		86/87 or a report in its stderr), checked once; None when none."""
		if self.proc is None or self.proc.poll() is None or self.sanitizer_checked:
			return None
		self.sanitizer_checked = True
		return emutest.sanitizer_report("databoxfs", self.proc.returncode, self.stderr())

	def stop(self):
		"""Unmount, wait for the process to exit (SIGTERM, then SIGKILL, when
		it does not), remove its directory; AssertionError afterwards when it
		made a sanitizer report."""
		# Under a sanitizer the exit runs the leak check: give it time.
		grace = 20 if emutest.sanitizer_env() else 5
		report = None
		try:
			self.unmount()
		finally:
			if self.proc is not None and self.proc.poll() is None:
				if self.wait_exit(grace) is None:
					self.proc.send_signal(signal.SIGTERM)
					if self.wait_exit(grace) is None:
						self.proc.kill()
						self.proc.wait(timeout=5)
			if is_mounted(self.path):
				run(["fusermount3", "-uz", self.path], timeout=15)
			report = self.check_sanitizer()
			shutil.rmtree(self.tmp, ignore_errors=True)
			if self in _LIVE:
				_LIVE.remove(self)
		if report:
			raise AssertionError(report)


def stop_all(objs):
	"""stop() each of objs, last first; report a failure and go on."""
	for o in reversed(objs):
		try:
			o.stop()
		except Exception as e:  # noqa: BLE001 - report and go on cleaning
			log("cleanup: %r" % e)


class Cleanup:
	"""Mixin of test cases that start things per test: track(obj) puts obj
	(anything with stop(): a Mount, an Emulator, a stand-in az) on
	self.cleanup; after tearDown, and even when setUp or the test failed,
	they are all stopped, last first. self.tmp is a fresh private
	directory, removed then too."""

	def setUp(self):
		super().setUp()
		self.cleanup = []
		self.tmp = private_tmp("case-")
		self.addCleanup(self._stop_tracked)

	def _stop_tracked(self):
		stop_all(self.cleanup)
		shutil.rmtree(self.tmp, ignore_errors=True)

	def track(self, obj):
		self.cleanup.append(obj)
		return obj


def _cleanup_all():
	global _ROOT
	# Mounts first (they talk to emulators), then emulators.
	for obj in [o for o in _LIVE if isinstance(o, Mount)]:
		try:
			obj.stop()
		except Exception as e:  # noqa: BLE001 - last resort, report and go on
			log("cleanup: %r" % e)
	for obj in list(_LIVE):
		try:
			obj.stop()
		except Exception as e:  # noqa: BLE001
			log("cleanup: %r" % e)
	if _ROOT is not None and not any(p.startswith(_ROOT + "/") for p in mounted_points()):
		shutil.rmtree(_ROOT, ignore_errors=True)
		_ROOT = None


atexit.register(_cleanup_all)


def _on_term(signum, frame):
	# ctest kills a timed-out test with SIGTERM/SIGKILL: clean up on SIGTERM.
	_cleanup_all()
	sys.exit(128 + signum)


class MountedWorld(unittest.TestCase):
	"""Base class: one emulator and one mount for the whole module.

	Subclasses set WORLD (gen_world keyword arguments) and MOUNT (Mount
	keyword arguments); setUpClass starts both, tearDownClass stops both.
	"""

	WORLD = {"orders": 10}
	EMULATOR = {}
	MOUNT = {}

	@classmethod
	def make_world(cls):
		return gen_world(**cls.WORLD)

	@classmethod
	def setUpClass(cls):
		cls.world = cls.make_world()
		cls.emu = Emulator(cls.world, **cls.EMULATOR).start()
		try:
			cls.mnt = Mount(cls.emu, **cls.MOUNT).start()
		except BaseException:
			cls.emu.stop()
			raise

	@classmethod
	def tearDownClass(cls):
		try:
			cls.mnt.stop()
		finally:
			cls.emu.stop()

	def expect_errno(self, code, fn, *args):
		"""fn(*args) must raise OSError with errno code."""
		with self.assertRaises(OSError) as cm:
			fn(*args)
		self.assertEqual(cm.exception.errno, code, "%s%r: %s" % (fn.__name__, args, cm.exception))

	def tearDown(self):
		if hasattr(self, "mnt") and self.mnt.proc.poll() is not None:
			log("databoxfs exited %s; its log:\n%s" % (self.mnt.proc.returncode,
								     self.mnt.stderr()[-3000:]))


def main():
	"""Entry point of every test module: skip without FUSE, else unittest."""
	if not os.path.exists("/dev/fuse"):
		print("SKIP: /dev/fuse is missing", file=sys.stderr)
		sys.exit(SKIP)
	signal.signal(signal.SIGTERM, _on_term)
	prog = unittest.main(module="__main__", exit=False, verbosity=2)
	_cleanup_all()
	for what, excerpt in emutest.SANITIZER_REPORTS:
		log("FAIL: %s made a sanitizer report:\n%s" % (what, excerpt))
	sys.exit(0 if prog.result.wasSuccessful() and not emutest.SANITIZER_REPORTS else 1)


def cat(tc, path, timeout=60):
	"""cat PATH as bytes, bounded; when cat fails, fails the test tc (or,
	with tc None, raises AssertionError)."""
	p = subprocess.run(["cat", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			   timeout=timeout, stdin=subprocess.DEVNULL)
	if p.returncode != 0:
		msg = "cat %s: exit %d: %s" % (path, p.returncode, p.stderr.decode(errors="replace"))
		if tc is None:
			raise AssertionError(msg)
		tc.fail(msg)
	return p.stdout
