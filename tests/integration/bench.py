"""The numbers behind scripts/bench, measured in one run (no assertions).

A 250-order world (2 subscriptions, pages of 20) behind the emulator with
--latency-ms 20: cold and warm tar of the whole mount, cold, warm and stale
cat of one file, ARM requests per step from the emulator's counters, and the
peak RSS (VmHWM) of databoxfs after the tar.
"""

import os
import sys
import time

import harness

ORDERS = int(os.environ.get("DBX_BENCH_ORDERS", "250"))
PAGE = 20
LATENCY_MS = 20


def tar_all(mnt):
	# Through a pipe: GNU tar skips reading file data when the archive is
	# /dev/null itself, and the point is to read every file.
	p = harness.run(["bash", "-o", "pipefail", "-c", 'tar -cf - -C "$1" . | cat >/dev/null', "tar", mnt.path],
			timeout=600)
	if p.returncode != 0:
		raise SystemExit("tar failed: %s" % p.stderr)


def measure(emu, fn):
	emu.reset_counters()
	t0 = time.monotonic()
	fn()
	wall = time.monotonic() - t0
	c = emu.counters()
	return wall, c["by_service"].get("arm", 0), c["total"] - c["by_service"].get("arm", 0)


def vm_hwm_kb(pid):
	with open("/proc/%d/status" % pid) as f:
		for line in f:
			if line.startswith("VmHWM:"):
				return int(line.split()[1])
	return -1


def main():
	if not os.path.exists("/dev/fuse"):
		print("bench: /dev/fuse is missing", file=sys.stderr)
		return 77
	world = harness.gen_world(orders=ORDERS, subscriptions=2, resource_groups=3, seed=1, page_size=PAGE)
	emu = harness.Emulator(world, latency_ms=LATENCY_MS, page_size=PAGE).start()
	rows = []
	try:
		# cache_ttl=30 so the warm tar runs within the TTL.
		mnt = harness.Mount(emu, cache_ttl=30, timeout=120).start()
		rows.append(("cold tar, whole mount",) + measure(emu, lambda: tar_all(mnt)))
		hwm = vm_hwm_kb(mnt.proc.pid)
		rows.append(("warm tar, within TTL",) + measure(emu, lambda: tar_all(mnt)))
		mnt.stop()

		sub, rg, name = harness.split_job_id(world["jobs"][0]["id"])
		mnt = harness.Mount(emu, cache_ttl=2, timeout=120).start()
		f = mnt.p(sub, rg, name, "encryption.json")

		def cat():
			harness.cat(None, f, timeout=120)
		rows.append(("cat 1 file, fresh mount",) + measure(emu, cat))
		rows.append(("cat 1 file, warm",) + measure(emu, cat))
		time.sleep(2.5)
		rows.append(("cat 1 file, after TTL",) + measure(emu, cat))
		mnt.stop()
	finally:
		harness._cleanup_all()

	print("databoxfs bench: %d orders, 2 subscriptions, page size %d, emulator latency %d ms" %
	      (ORDERS, PAGE, LATENCY_MS))
	print("%-26s %9s %9s %9s %11s" % ("step", "wall (s)", "ARM req", "other req", "ARM/order"))
	for label, wall, arm, other in rows:
		per_order = "%11.4f" % (arm / ORDERS) if "tar" in label else "%11s" % "-"
		print("%-26s %9.3f %9d %9d %s" % (label, wall, arm, other, per_order))
	cold_wall, cold_arm = rows[0][1], rows[0][2]
	print()
	print("databoxfs peak RSS after the cold tar (VmHWM): %d kB" % hwm)
	if cold_arm:
		print("cold tar wall / (ARM requests x latency) = %.3f / (%d x %.3f) = %.2f" %
		      (cold_wall, cold_arm, LATENCY_MS / 1000, cold_wall / (cold_arm * LATENCY_MS / 1000)))
	print("cold tar wall / warm tar wall = %.2f" % (cold_wall / max(rows[1][1], 1e-6)))
	print("cat fresh mount / warm cat = %.2f" % (rows[2][1] / max(rows[3][1], 1e-6)))
	return 0


if __name__ == "__main__":
	sys.exit(main())
