"""The fault matrix (issue 9): every fault the emulator can play against every
operation an admin runs, through a real mount with -o timeout=8.

Faults (FAULTS): a 429 storm with Retry-After in seconds, in milliseconds
and as an HTTP date; 500, 502, 503, 504 on every ARM request; connection
refused (the emulator stopped); connections dropped before the request
ran and after it ran (a PATCH applied, its answer lost); an answer whose
body stalls past timeout; the token endpoint failing or slow with every
token expired; a failing and a never-ending long-running operation; one
lost answer to an applied PATCH; the emulator killed in the middle of the
operation and restarted (same ports, CA and state, emutest --persist);
and the hostile answers (HOSTILE): bodies oversized (17 MiB), nested
10,000 deep, not UTF-8, with a key twice, with a wrong type; nextLinks that
loop, leave the cloud or drop to http; a 202 Location off-host or http.
Operations (OPS): readdir of the root, a subscription, a resource group and
an order; a read of each order file; each kind of write (key_url,
encryption_type, identity, encryption.json); a full tar.

Each cell (fault x operation) asserts:
  - the mount process stays up and mounted;
  - each system call returns within timeout + 2 s (tar: the whole run
    within a bound, its calls are not timed one by one);
  - the outcome is the one docs/formats.md ("errno", "Writes", "Reads")
    gives for that fault: the errno of the table, or success;
  - a write's result matches the emulator's stored order afterwards: success
    only when the change is there, a failure other than ETIMEDOUT only when
    it is not, and every failure leaves a last-write block in errors;
  - after the fault is lifted, reads show the emulator's state (oracle.py),
    and errors keeps no stale read block.

The table is generated: a fault is one Fault row (how to arm and disarm
it, what reads and writes must end with), an operation one Op row. One
mount serves each fault; its cells are prepared first (fresh orders for
writes, one warm read each), then run together (PARALLEL children) while
the fault is armed, except for the faults that act on one request at a
time (restart), whose cells run one by one. Cells that fail are reported,
never skipped: the end of the run prints a fault x operation table with
pass counts and every failure with what was observed and what was expected.
test_faults.py runs a subset of the same table in every scripts/test.
"""

import base64
import errno
import json
import os
import subprocess
import sys
import threading
import time

import harness
import oracle
import writes

TIMEOUT = 8		# -o timeout of the matrix's mounts
SLACK = 2		# a system call may take timeout + SLACK
# After a fault is lifted the mount may answer with the failure it just met
# for half a second (docs/formats.md, "Reads": the rest of a system call
# fails at once); reads after recovery start once that has passed.
RECOVERY_S = 0.6
PARALLEL = int(os.environ.get("DBX_MATRIX_PARALLEL", "6"))  # cells of one fault run together
TAR_BOUND = 90		# a whole tar, when it runs to the end

EAGAIN, EIO, ETIMEDOUT, EHOSTUNREACH = errno.EAGAIN, errno.EIO, errno.ETIMEDOUT, errno.EHOSTUNREACH
NAMES = {0: "ok", EAGAIN: "EAGAIN", EIO: "EIO", ETIMEDOUT: "ETIMEDOUT", EHOSTUNREACH: "EHOSTUNREACH",
	 errno.EACCES: "EACCES", errno.ENOENT: "ENOENT", errno.EINVAL: "EINVAL", errno.EBUSY: "EBUSY",
	 errno.EINTR: "EINTR", -1: "hung"}
STRERROR = {os.strerror(e): e for e in range(1, 134)}

# One operation in a child process, so that a hung system call can be
# killed; prints {"errno", "calls": [[name, seconds]], "data": base64}.
CHILD = r"""
import base64, json, os, sys, time
spec = json.loads(sys.argv[1])
calls, data, first = [], b"", []
def timed(name, fn, *a):
	t = time.monotonic()
	try:
		return fn(*a)
	except OSError as e:
		first.append((name, e.errno))
		raise
	finally:
		calls.append([name, time.monotonic() - t])
try:
	if spec["op"] == "ls":
		data = json.dumps(sorted(timed("readdir", os.listdir, spec["path"]))).encode()
	elif spec["op"] == "cat":
		fd = timed("open", os.open, spec["path"], os.O_RDONLY)
		try:
			while True:
				b = timed("read", os.read, fd, 1 << 16)
				if not b:
					break
				data += b
		finally:
			timed("close", os.close, fd)
	else:
		fd = timed("open", os.open, spec["path"], os.O_WRONLY | os.O_TRUNC)
		try:
			timed("write", os.write, fd, (spec["value"] + "\n").encode())
		finally:
			timed("close", os.close, fd)
except OSError:
	pass
failed, code = first[0] if first else (None, 0)
print(json.dumps({"errno": code, "calls": calls, "failed": failed,
		  "data": base64.b64encode(data).decode()}))
"""


def name_of(code):
	return NAMES.get(code, "errno %s" % code)


def names(codes):
	return "|".join(name_of(c) for c in sorted(codes))


# ---- faults ----

class Fault:
	"""One row of the matrix. read / write: the outcomes (0 = success, else
	errno) a read and a write may end with under this fault. applied: True
	when the change reaches the order whatever the client hears, False when
	it never does, None when that depends on the outcome. serial: cells run
	one by one (the fault acts around one operation)."""

	serial = False

	def __init__(self, name, read, write, applied, rules=(), what=""):
		self.name = name
		self.read = set(read)
		self.write = set(write)
		self.applied = applied
		self.rules = rules
		self.what = what

	def rules_for(self, kind):
		return self.rules

	def arm(self, m, kind):
		for r in self.rules_for(kind):
			m.emu.fault(**r)

	def during(self, m, kind):
		"""Started in a thread while the operation runs (restart)."""
		return None

	def disarm(self, m):
		if not m.emu.running():
			m.emu.start()
		m.emu.clear_faults()


ARM = {"service": "arm"}


class RefusedFault(Fault):
	def arm(self, m, kind):
		m.emu.halt()


class TokenFault(Fault):
	"""Every token expired at once and the token endpoint broken; tokens it
	still issues live 1 s, so one that arrives late is expired already and
	the fault lasts until it is lifted."""

	def arm(self, m, kind):
		Fault.arm(self, m, kind)
		m.emu.admin("POST", "/admin/tokens/lifetime", {"seconds": 1})
		m.emu.admin("POST", "/admin/tokens/expire", {})

	def disarm(self, m):
		m.emu.admin("POST", "/admin/tokens/lifetime", {"seconds": 0})
		Fault.disarm(self, m)


class PatchFault(Fault):
	"""Rules for the write's PATCH only (reads run as usual); rules_read
	for reads (drop after: every GET runs and loses its answer)."""

	def __init__(self, name, read, write, applied, rules, rules_read=(), what=""):
		super().__init__(name, read, write, applied, rules, what)
		self.rules_read = rules_read

	def rules_for(self, kind):
		return self.rules if kind == "write" else self.rules_read


class FailingOperation(Fault):
	def arm(self, m, kind):
		m.emu.admin("POST", "/admin/fail-next-patch", {"count": 1000})

	def disarm(self, m):
		m.emu.admin("POST", "/admin/fail-next-patch", {"count": 0})
		Fault.disarm(self, m)


class NeverEndingOperation(Fault):
	def arm(self, m, kind):
		for sub in m.subs:
			m.emu.fault(service="arm", method="GET", status=202, retry_after="1",
				    path_prefix="/subscriptions/%s/providers/Microsoft.DataBox/locations/" % sub)


class RestartFault(Fault):
	"""The emulator killed (SIGKILL) while it holds the operation's request
	(a write: its PATCH, applied and saved; a read: its first ARM request),
	down DOWN_S, then started again."""

	serial = True
	DOWN_S = 1.0

	def arm(self, m, kind):
		m.emu.reset_log()
		m.emu.fault(service="arm", method="PATCH" if kind == "write" else None, latency_ms=3000)

	def during(self, m, kind):
		emu = m.emu

		def held():
			return [r for r in emu.requests() if r["service"] == "arm" and
				(kind != "write" or r["method"] == "PATCH")]

		def run():
			try:
				harness.wait_for(held, TIMEOUT + 5, "the request to kill the emulator under",
						 interval=0.05)
			except AssertionError:
				return
			emu.kill()
			time.sleep(self.DOWN_S)
			emu.start()

		t = threading.Thread(target=run, daemon=True)
		t.start()
		return t


class HostileBody(Fault):
	"""Every ARM GET answered 200 with a hostile body (made from the read
	cells' order by make(job) -> bytes): a malformed answer is EIO, never
	read as absent, never the base of a PATCH."""

	def __init__(self, name, make, what):
		super().__init__(name, {EIO}, {EIO}, False, what=what)
		self.make = make
		self.body = None

	def arm(self, m, kind):
		if self.body is None:
			self.body = base64.b64encode(self.make(m.read_job)).decode()
		m.emu.fault(service="arm", method="GET", status=200, body_b64=self.body)


class OffCloud(Fault):
	"""A rule that points the client off the cloud's hosts (nextLink,
	Location): it must refuse, and no request may reach another host."""

	def arm(self, m, kind):
		self.unknown = m.emu.counters()["by_service"].get("unknown", 0)
		Fault.arm(self, m, kind)

	def disarm(self, m):
		left = m.emu.counters()["by_service"].get("unknown", 0) - self.unknown
		Fault.disarm(self, m)
		if left:
			m.off_cloud = left


def _job_text(job, **over):
	j = dict(job)
	j.update(over)
	return json.dumps(j).encode()


def _dup_keys(job):
	text = json.dumps(job)
	assert text.endswith("}")
	return (text[:-1] + ', "properties": {"status": "Cancelled"}}').encode()


def _non_utf8(job):
	return _job_text(job, name="NAME").replace(b'"NAME"', b'"order-\xff\xfe"')


OK = {0}
HOSTILE = [
	HostileBody("body-17MiB", lambda j: b'{"value": [], "pad": "' + b"x" * (17 << 20) + b'"}',
		    "every ARM GET answers a 17 MiB body (the cap is 16 MiB)"),
	HostileBody("body-nested", lambda j: b'{"value": ' + b"[" * 10000 + b"]" * 10000 + b"}",
		    "every ARM GET answers JSON nested 10,000 deep"),
	HostileBody("body-non-utf8", _non_utf8, "every ARM GET answers an order whose name is not UTF-8"),
	HostileBody("body-dup-keys", _dup_keys,
		    "every ARM GET answers an order with properties twice, different values"),
	HostileBody("body-wrong-type", lambda j: _job_text(j, properties=5),
		    "every ARM GET answers an order whose properties is 5"),
	OffCloud("nextlink-loop", {0, EIO}, {0, EIO}, None, [dict(ARM, method="GET", next_link="loop")],
		 "every list answer's nextLink is the page itself"),
	OffCloud("nextlink-foreign", {0, EIO}, {0, EIO}, None,
		 [dict(ARM, method="GET", next_link="foreign")],
		 "every list answer's nextLink is on attacker.example.net"),
	OffCloud("nextlink-http", {0, EIO}, {0, EIO}, None, [dict(ARM, method="GET", next_link="http")],
		 "every list answer's nextLink is http://"),
	OffCloud("location-foreign", OK, {0, ETIMEDOUT}, True,
		 [dict(ARM, method="PATCH", headers={"Location": "https://attacker.example.net/op"})],
		 "a PATCH applied, its 202 Location on attacker.example.net"),
	OffCloud("location-http", OK, {0, ETIMEDOUT}, True,
		 [dict(ARM, method="PATCH", headers={"Location": "http://management.azure.com/op"})],
		 "a PATCH applied, its 202 Location http://"),
]
# listings cannot succeed through a broken nextLink
LIST_BROKEN = {"nextlink-loop", "nextlink-foreign", "nextlink-http"}

FAULTS = [
	Fault("429-s", {EAGAIN}, {EAGAIN}, False,
	      [dict(ARM, status=429, retry_after="1")], "429 storm, Retry-After: 1"),
	Fault("429-ms", {EAGAIN}, {EAGAIN}, False,
	      [dict(ARM, status=429, retry_after_ms=400)], "429 storm, retry-after-ms: 400"),
	Fault("429-date", {EAGAIN}, {EAGAIN}, False,
	      [dict(ARM, status=429, retry_after_date_s=1)], "429 storm, Retry-After as an HTTP date"),
	Fault("500", {EIO}, {EIO}, False, [dict(ARM, status=500)]),
	Fault("502", {EIO}, {EIO}, False, [dict(ARM, status=502)]),
	Fault("503", {EIO}, {EIO}, False, [dict(ARM, status=503)]),
	Fault("504", {EIO}, {EIO}, False, [dict(ARM, status=504)]),
	RefusedFault("refused", {EHOSTUNREACH}, {EHOSTUNREACH}, False,
		     what="connection refused: the emulator stopped"),
	Fault("drop-before", {EIO}, {EIO}, False, [dict(ARM, drop=True)],
	      "every ARM connection closed before the request ran"),
	PatchFault("drop-after", {EIO}, {0, ETIMEDOUT}, True,
		   [dict(ARM, method="PATCH", drop_after=True)],
		   [dict(ARM, method="GET", drop_after=True)],
		   "every PATCH (reads: GET) runs, then its connection closes unanswered"),
	Fault("stall", {ETIMEDOUT}, {ETIMEDOUT}, None, [dict(ARM, stall_ms=4 * TIMEOUT * 1000)],
	      "every ARM body stalls half-way for 4 x timeout"),
	TokenFault("token-fail", {EIO}, {EIO}, False, [{"service": "entra", "status": 503}],
		   "tokens expired, the token endpoint answers 503"),
	TokenFault("token-slow", {ETIMEDOUT}, {ETIMEDOUT}, False,
		   [{"service": "entra", "latency_ms": 4 * TIMEOUT * 1000}],
		   "tokens expired, the token endpoint takes 4 x timeout"),
	FailingOperation("op-fail", OK, {EIO}, False, what="every operation fails (fail-next-patch)"),
	NeverEndingOperation("op-never", OK, {0, ETIMEDOUT}, True,
			     what="every operationResults poll answers 202, Retry-After: 1"),
	PatchFault("lost-answer", OK, {0, ETIMEDOUT}, True,
		   [dict(ARM, method="PATCH", drop_after=True, count=1)],
		   what="the answer to one applied PATCH lost"),
	RestartFault("restart", {0, EHOSTUNREACH}, {0, ETIMEDOUT}, True,
		     what="the emulator killed mid-request, restarted 1 s later"),
] + HOSTILE


# ---- operations ----

class Op:
	"""One column: kind "read" (readdir, a file read, tar) or "write"."""

	def __init__(self, name, kind, how, target=None, order_kind=None):
		self.name = name
		self.kind = kind
		self.how = how		# ls, cat, write, tar
		self.target = target	# level (ls), file (cat, write)
		self.order_kind = order_kind


OPS = [Op("ls-root", "read", "ls", "root"), Op("ls-sub", "read", "ls", "sub"),
       Op("ls-rg", "read", "ls", "rg"), Op("ls-order", "read", "ls", "order")]
OPS += [Op("cat-" + f, "read", "cat", f) for f in oracle.FILES]
OPS += [Op("w-key_url", "write", "write", "key_url", "cm-system"),
	Op("w-encryption_type", "write", "write", "encryption_type", "cm-system"),
	Op("w-identity", "write", "write", "identity", "mm-system"),
	Op("w-encryption.json", "write", "write", "encryption.json", "cm-system")]
OPS += [Op("tar", "read", "tar")]


class Cell:
	def __init__(self, fault, op):
		self.fault, self.op = fault, op
		self.problems = []
		self.outcome = None
		self.took = 0.0
		self.result = None
		self.before = None

	def fail(self, msg):
		self.problems.append(msg)


def expected(fault, op):
	"""The outcomes a cell may end with. errors is read even while ARM
	fails (it says why: docs/formats.md, "Reads"); an order directory's
	names do not depend on ARM, so listing them may also succeed."""
	if op.how == "cat" and op.target == "errors":
		return {0}
	if op.how == "ls" and op.target == "order":
		return fault.read | {0}
	if fault.name in LIST_BROKEN and (op.how == "tar" or op.how == "ls"):
		return {EIO}
	return fault.read if op.kind == "read" else fault.write


# ---- the matrix ----

class Matrix(writes.WriteWorld):
	"""The demo world on one emulator started with --persist; one mount per
	fault (timeout=8, cache_ttl=0, lro_poll=0.05)."""

	FAULTS = FAULTS
	OPS = OPS
	TITLE = "fault matrix"
	results = []

	@classmethod
	def setUpClass(cls):
		cls.world = cls.make_world()
		cls.emu = harness.Emulator(cls.world)
		cls.emu.extra_args.append("--persist")
		cls.emu.start()
		cls.mnt = None
		cls.learn_world()
		cls.subs = [s["subscriptionId"] for s in cls.world["subscriptions"]]
		# the read cells' order: customer-managed, healthy, in subscription 0
		cls.read_job = [j for j in cls.world["jobs"] if j["id"].split("/")[2] == cls.sub0 and
				(oracle.values(j)["encryption_type"] == "CustomerManaged") and
				not oracle.expects_errors(j)][0]
		cls.results = []
		cls.tmp = harness.private_tmp("matrix-")

	@classmethod
	def tearDownClass(cls):
		try:
			cls.report()
		finally:
			cls.emu.stop()

	def tearDown(self):
		pass

	# ---- the report ----
	@classmethod
	def report(cls):
		cells = cls.results
		if not cells:
			return
		ops = [o.name for o in cls.OPS]
		ran = {c.fault.name for c in cells}
		faults = [f.name for f in cls.FAULTS if f.name in ran]
		width = max(len(f) for f in faults) + 2
		col = max(5, max(len(o) for o in ops))
		lines = ["", "%s: fault x operation (. = pass, X = fail, - = not run)" % cls.TITLE]
		# header: operation names vertically is unreadable; number them
		lines.append(" " * width + " ".join("%2d" % (i + 1) for i in range(len(ops))) + "   pass")
		by = {(c.fault.name, c.op.name): c for c in cells}
		for f in faults:
			row, ok, n = [], 0, 0
			for o in ops:
				c = by.get((f, o))
				if c is None:
					row.append(" -")
					continue
				n += 1
				ok += not c.problems
				row.append(" ." if not c.problems else " X")
			lines.append(f.ljust(width) + " ".join(row) + "   %d/%d" % (ok, n))
		totals = []
		for o in ops:
			cs = [c for c in cells if c.op.name == o]
			totals.append("%d/%d" % (sum(not c.problems for c in cs), len(cs)))
		lines.append("")
		for i, o in enumerate(ops):
			lines.append("  %2d %-*s pass %s" % (i + 1, col, o, totals[i]))
		passed = sum(not c.problems for c in cells)
		lines.append("%s: %d of %d cells pass" % (cls.TITLE, passed, len(cells)))
		fails = [c for c in cells if c.problems]
		if fails:
			lines.append("failing cells (observed vs expected):")
		for c in fails:
			want = names(expected(c.fault, c.op))
			at = (" at %s" % c.result["failed"]) if c.result and c.result.get("failed") else ""
			lines.append("  %s x %s: observed %s%s in %.1fs, expected %s" % (
				c.fault.name, c.op.name, name_of(c.outcome) if c.outcome is not None else "?",
				at, c.took, want))
			for p in c.problems:
				lines.append("      - " + p)
		harness.log("\n".join(lines))
		path = os.environ.get("DBX_MATRIX_REPORT")
		if path:
			with open(path, "a") as f:
				f.write("\n".join(lines) + "\n")

	# ---- one fault ----
	def run_fault(self, fault):
		self.mnt = harness.Mount(self.emu, cache_ttl=0, timeout=TIMEOUT,
					 extra=("lro_poll=0.05",)).start()
		type(self).mnt = self.mnt
		cells = [Cell(fault, op) for op in self.OPS]
		try:
			for c in cells:
				self.prepare(c)
			if fault.serial:
				for c in cells:
					self.run_cells(fault, [c])
					time.sleep(RECOVERY_S)
					self.check(c)
			else:
				for kind in ("read", "write"):
					group = [c for c in cells if c.op.kind == kind]
					self.run_cells(fault, group)
					time.sleep(RECOVERY_S)
					for c in group:
						self.check(c)
		finally:
			type(self).results.extend(cells)
			self.emu.clear_faults()
			if not self.emu.running():
				self.emu.start()
			self.mnt.stop()
			# The write cells' fresh orders go again, so every fault's tar walks
			# the same world (with cache_ttl=0 each order costs ARM reads, and
			# the mount's read budget paces them).
			for c in cells:
				if c.op.kind == "write" and getattr(c, "ids", None):
					self.emu.admin_status("DELETE", "/admin/jobs/%s/%s/%s" % c.ids)
		bad = ["%s: %s" % (c.op.name, "; ".join(c.problems)) for c in cells if c.problems]
		self.assertEqual(bad, [], "fault %s (%s): %d of %d cells fail" % (
			fault.name, fault.what, len(bad), len(cells)))

	def run_cells(self, fault, group):
		if not group:
			return
		kind = group[0].op.kind
		self.off_cloud = 0
		fault.arm(self, kind)
		helper = fault.during(self, kind)
		try:
			self.run_parallel(group)
		finally:
			if helper is not None:
				helper.join(TIMEOUT + 20)
			fault.disarm(self)
		for c in group:
			if self.off_cloud:
				c.fail("%d requests went to a host outside the cloud" % self.off_cloud)

	def run_parallel(self, group):
		pending = list(group)
		lock = threading.Lock()

		def worker():
			while True:
				with lock:
					if not pending:
						return
					c = pending.pop(0)
				try:
					self.execute(c)
				except Exception as e:  # noqa: BLE001 - a cell's failure, reported
					c.fail("the cell broke: %r" % e)

		threads = [threading.Thread(target=worker, daemon=True)
			   for _ in range(min(PARALLEL, len(group)))]
		for t in threads:
			t.start()
		for t in threads:
			t.join(TAR_BOUND + 60)

	# ---- a cell's parts ----
	def order_dir(self, job):
		sub, rg, name = harness.split_job_id(job["id"])
		return self.mnt.p(sub, rg, name)

	def new_key_url(self, job):
		cur = oracle.values(job)["key_url"] or ""
		key = "dbx-key-3072" if "dbx-key-3072" not in cur else "dbx-key-2048"
		return self.key_url(key)

	def prepare(self, c):
		"""Targets, values, the stored order before, one warm read."""
		op = c.op
		if op.kind == "write":
			sub, rg, name, d = self.new_order(op.order_kind)
			c.ids = (sub, rg, name)
			c.before = self.job(sub, rg, name)
			if op.target in ("key_url", "encryption.json"):
				url = self.new_key_url(c.before)
				c.value = url if op.target == "key_url" else json.dumps({"key_url": url})
				c.changed = lambda j, u=url: (oracle.values(j)["key_url"] or "").startswith(u)
			elif op.target == "encryption_type":
				c.value = "MicrosoftManaged"
				c.changed = lambda j: oracle.values(j)["encryption_type"] == "MicrosoftManaged"
			else:
				c.value = "None"
				c.changed = lambda j: oracle.values(j)["identity"] == "None"
			c.path = os.path.join(d, op.target)
		else:
			sub, rg, name = harness.split_job_id(self.read_job["id"])
			c.ids = (sub, rg, name)
			if op.how == "ls":
				c.path = {"root": self.mnt.path, "sub": self.mnt.p(sub),
					  "rg": self.mnt.p(sub, rg), "order": self.mnt.p(sub, rg, name)}[op.target]
			elif op.how == "tar":
				c.path = self.mnt.path
			else:
				c.path = self.mnt.p(sub, rg, name, op.target)
		# warm: the mount knows the path and holds a token before the fault
		if os.path.isdir(c.path):
			os.listdir(c.path)
		else:
			with open(c.path, "rb") as f:
				f.read()

	def execute(self, c):
		op = c.op
		t0 = time.monotonic()
		if op.how == "tar":
			out = os.path.join(self.tmp, "tar-%s.tar" % c.fault.name)
			try:
				p = subprocess.run(["tar", "-cf", out, "-C", c.path, "."], stdout=subprocess.PIPE,
						   stderr=subprocess.PIPE, text=True, timeout=TAR_BOUND,
						   stdin=subprocess.DEVNULL)
			except subprocess.TimeoutExpired:
				c.took = time.monotonic() - t0
				c.outcome = -1
				c.fail("tar still ran after %d s" % TAR_BOUND)
				return
			c.took = time.monotonic() - t0
			codes = set()
			for line in p.stderr.splitlines():
				for text, e in STRERROR.items():
					if line.rstrip().endswith(": " + text):
						codes.add(e)
			c.tar_codes = codes
			c.tar_stderr = p.stderr
			c.outcome = 0 if p.returncode == 0 else (min(codes) if len(codes) == 1 else
								 (sorted(codes)[0] if codes else EIO))
			if p.returncode != 0 and len(codes) > 1:
				c.fail("tar saw several errnos: %s" % names(codes))
			if p.returncode == 0 and p.stderr.strip():
				c.fail("tar succeeded with messages: %s" % p.stderr.strip()[-200:])
			if p.returncode != 0 and not codes:
				c.fail("tar failed without an errno: %s" % p.stderr.strip()[-200:])
			return
		spec = {"op": op.how, "path": c.path}
		if op.kind == "write":
			spec["value"] = c.value
		bound = TIMEOUT + SLACK + 3
		try:
			p = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)],
					   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
					   timeout=bound, stdin=subprocess.DEVNULL)
		except subprocess.TimeoutExpired:
			c.took = time.monotonic() - t0
			c.outcome = -1
			c.fail("the system call still ran after %d s" % bound)
			return
		c.took = time.monotonic() - t0
		try:
			c.result = json.loads(p.stdout)
		except ValueError:
			c.fail("the child said %r %r" % (p.stdout[-200:], p.stderr[-200:]))
			return
		c.outcome = c.result["errno"]
		for name, took in c.result["calls"]:
			if took > TIMEOUT + SLACK:
				c.fail("%s took %.1fs (timeout %d + %d)" % (name, took, TIMEOUT, SLACK))

	def check(self, c):
		"""Everything a cell asserts once its fault is lifted."""
		op, f = c.op, c.fault
		if self.mnt.proc.poll() is not None or not harness.is_mounted(self.mnt.path):
			c.fail("the mount died (exit %s): %s" % (self.mnt.proc.poll(),
								 self.mnt.stderr()[-500:]))
			return
		if c.outcome is None:
			return
		want = expected(f, op)
		if c.outcome not in want and c.outcome != -1:
			c.fail("ended %s, the table says %s" % (name_of(c.outcome), names(want)))
		sub, rg, name = c.ids
		if op.kind == "write":
			self.check_write(c, sub, rg, name)
		else:
			self.check_read(c, sub, rg, name)

	def check_write(self, c, sub, rg, name):
		after = self.job(sub, rg, name)
		changed = c.changed(after)
		f = c.fault
		if c.outcome == 0 and not changed:
			c.fail("the write succeeded but the order does not hold the change")
		if c.outcome not in (0, ETIMEDOUT, -1) and changed:
			c.fail("the write failed (%s) but the order holds the change" % name_of(c.outcome))
		if f.applied is True and not changed:
			c.fail("the fault leaves the change applied, the order does not show it")
		if f.applied is False and changed:
			c.fail("the change reached the order although the fault lets nothing through")
		d = os.path.dirname(c.path)
		# a write refused at open (the order could not be read) sends nothing;
		# an ETIMEDOUT whose change has landed since loses its block to the
		# first read that shows it (docs/formats.md, "The errors file")
		landed = c.outcome == ETIMEDOUT and changed
		if c.outcome not in (0, -1) and not landed and c.result and \
		   c.result.get("failed") != "open":
			text = self.read_retry(os.path.join(d, "errors"), c)
			if text is not None and not [b for b in oracle.parse_errors(text.decode())
						     if b.get("source") == "last-write"]:
				c.fail("errors has no last-write block after a failed write:\n%s" % text)
		# after recovery the file shows the stored order
		got = self.read_retry(c.path, c)
		want = oracle.expected_files(after)[c.op.target]
		if got is not None and got != want:
			c.fail("after recovery %s reads %r, the order holds %r" % (c.op.target, got, want))

	def read_retry(self, path, c):
		"""The file's bytes after recovery (one read, bounded); None + a
		problem when it fails."""
		t0 = time.monotonic()
		p = subprocess.run(["cat", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
				   timeout=TIMEOUT + SLACK + 15, stdin=subprocess.DEVNULL)
		took = time.monotonic() - t0
		if p.returncode != 0:
			c.fail("after recovery cat %s failed: %s" % (os.path.basename(path),
								    p.stderr.decode(errors="replace").strip()))
			return None
		if took > TIMEOUT + SLACK:
			c.fail("after recovery cat %s took %.1fs" % (os.path.basename(path), took))
		return p.stdout

	def expected_listing(self, level, sub, rg):
		w = self.emu.admin("GET", "/admin/world")
		if level == "root":
			return sorted(s["subscriptionId"] for s in w["subscriptions"])
		if level == "sub":
			return sorted({harness.split_job_id(j["id"])[1] for j in w["jobs"]
				       if harness.split_job_id(j["id"])[0] == sub})
		if level == "rg":
			return sorted(harness.split_job_id(j["id"])[2] for j in w["jobs"]
				      if harness.split_job_id(j["id"])[:2] == (sub, rg))
		return sorted(oracle.FILES)

	def check_read(self, c, sub, rg, name):
		op = c.op
		job = self.job(sub, rg, name)
		files = oracle.expected_files(job)
		# a read that succeeded under the fault shows the order
		if c.outcome == 0 and c.result is not None:
			data = base64.b64decode(c.result["data"])
			if op.how == "ls":
				want = self.expected_listing(op.target, sub, rg)
				if json.loads(data) != want:
					c.fail("listed %s, the emulator holds %s" % (json.loads(data), want))
			elif op.target == "errors":
				pass
			elif data != files[op.target]:
				c.fail("read %r, the order holds %r" % (data, files[op.target]))
		# errors says why a read failed: cat errors under a read fault
		# succeeds and carries a read block
		if op.how == "cat" and op.target == "errors" and c.outcome == 0 and \
		   c.result is not None and 0 not in c.fault.read:
			text = base64.b64decode(c.result["data"]).decode(errors="replace")
			if not [b for b in oracle.parse_errors(text) if b.get("source") == "read"]:
				c.fail("errors has no read block while ARM fails:\n%s" % text)
		# after recovery
		if op.how == "ls":
			p = harness.run(["ls", "-1", c.path], timeout=TIMEOUT + SLACK + 15)
			want = self.expected_listing(op.target, sub, rg)
			if p.returncode != 0 or sorted(p.stdout.split()) != want:
				c.fail("after recovery ls shows %r (%s), the emulator holds %s" % (
					p.stdout.split(), p.stderr.strip(), want))
		elif op.how == "cat":
			got = self.read_retry(c.path, c)
			if got is None:
				return
			if op.target == "errors":
				stale = [b for b in oracle.parse_errors(got.decode(errors="replace"))
					 if b.get("source") == "read"]
				if stale:
					c.fail("after recovery errors still has a read block:\n%s" % got.decode())
			elif got != files[op.target]:
				c.fail("after recovery %s reads %r, the order holds %r" % (
					op.target, got, files[op.target]))
		else:
			d = self.order_dir(job)
			for fname in ("key_url", "status"):
				got = self.read_retry(os.path.join(d, fname), c)
				if got is not None and got != files[fname]:
					c.fail("after recovery %s reads %r, the order holds %r" % (
						fname, got, files[fname]))


def add_tests(cls, faults):
	"""One test method per fault, in the table's order."""
	for i, f in enumerate(faults):
		def test(self, f=f):
			self.run_fault(f)
		test.__doc__ = "%s: %s" % (f.name, f.what or f.name)
		setattr(cls, "test_%02d_%s" % (i, f.name.replace("-", "_")), test)


class FaultMatrix(Matrix):
	"""Every fault x every operation."""


add_tests(FaultMatrix, FAULTS)


if __name__ == "__main__":
	harness.main()
