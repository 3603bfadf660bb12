"""The ASan suite's own check (scripts/test --asan): a sanitizer report of
the mount fails the test that ran it.

The mount runs with a preloaded library (compiled here with cc) that leaks
one block at start, so LeakSanitizer must report at exit, after the
unmount. The harness must see it: Mount.stop() raises AssertionError
naming LeakSanitizer, and the report is kept for main() to fail the
module (it is taken back here, as this test expects it). Skipped when the
mount is not built with ASan (the normal suite)."""

import os
import subprocess
import unittest

import harness
from harness import emutest

LEAK_SHIM = r"""
#include <stdlib.h>
#include <string.h>
void *volatile dbx_leak_shim;
__attribute__((constructor)) static void leak(void)
{
	dbx_leak_shim = malloc(4242);
	memset(dbx_leak_shim, 1, 4242);
	dbx_leak_shim = NULL;
}
"""


def asan_build():
	"""Is the mount built with AddressSanitizer? (help=1 makes ASan list its flags.)"""
	p = subprocess.run([harness.databoxfs_path(), "--version"], stdout=subprocess.PIPE,
			   stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=30,
			   env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ASAN_OPTIONS": "help=1"})
	return b"AddressSanitizer" in p.stdout + p.stderr


class Sanitizers(harness.Cleanup, unittest.TestCase):
	def setUp(self):
		super().setUp()
		if not emutest.sanitizer_env() or not asan_build():
			self.skipTest("the mount is not built with ASan (run scripts/test --asan)")

	def test_leak_at_unmount_fails_the_test(self):
		src = os.path.join(self.tmp, "leak.c")
		shim = os.path.join(self.tmp, "leak.so")
		with open(src, "w") as f:
			f.write(LEAK_SHIM)
		harness.run(["cc", "-shared", "-fPIC", "-o", shim, src], timeout=60, check=True)
		world = harness.gen_world(orders=2, subscriptions=1, resource_groups=1, seed=91)
		emu = self.track(harness.Emulator(world).start())
		asan = os.environ["ASAN_OPTIONS"] + ":verify_asan_link_order=0"
		mnt = harness.Mount(emu, env={"LD_PRELOAD": shim, "ASAN_OPTIONS": asan})
		self.track(mnt).start()
		sub, rg, name = harness.split_job_id(world["jobs"][0]["id"])
		harness.cat(self, mnt.p(sub, rg, name, "status"))
		before = len(emutest.SANITIZER_REPORTS)
		with self.assertRaises(AssertionError) as cm:
			mnt.stop()
		self.assertIn("LeakSanitizer", str(cm.exception))
		self.assertIn("4242 byte", str(cm.exception))
		self.assertEqual(mnt.proc.returncode, 86, "LSan's exit status (scripts/test's exitcode)")
		self.assertEqual(len(emutest.SANITIZER_REPORTS), before + 1, "the report is kept")
		# Expected here: take it back so that main() does not fail the module for it.
		del emutest.SANITIZER_REPORTS[before:]
		# The mount and the emulator of a normal run make no report.
		mnt2 = self.track(harness.Mount(emu)).start()
		harness.cat(self, mnt2.p(sub, rg, name, "status"))
		mnt2.stop()
		self.assertEqual(mnt2.proc.returncode, 0, mnt2.stderr()[-3000:])
		emu.stop()
		self.assertEqual(emu.proc.returncode, 0, emu.log_tail())
		self.assertEqual(emutest.SANITIZER_REPORTS[before:], [])


if __name__ == "__main__":
	harness.main()
