"""Editors save order files: `sed -i`, ex/vim, and the temporary files they
make in an order directory. A temporary file (any name that is not an
attribute) lives in the mount's memory only; renaming it onto a rw
attribute applies its content as one write (one PATCH), and a refused value
leaves the order unchanged with the reason in errors. Nothing about
temporary files themselves reaches Azure."""

import errno
import os
import shutil

import oracle
import writes


class Editors(writes.WriteWorld):

	def listing(self, d):
		return sorted(os.listdir(d))

	def assert_clean(self, d):
		self.assertEqual(self.listing(d), sorted(oracle.FILES), "temporary files left behind")

	def versioned_order(self):
		sub, rg, name, d = self.new_order("cm-system")
		old, new = self.versions("dbx-key-2048")[:2]
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-2048", old))
		self.assertEqual(p.returncode, 0, p.stderr)
		return sub, rg, name, d, old, new

	def test_sed_in_place_applies_the_new_version(self):
		sub, rg, name, d, old, new = self.versioned_order()
		self.emu.reset_log()
		p = writes.sh("sed -i 's/%s/%s/' %s" % (old, new, writes.q(os.path.join(d, "key_url"))))
		self.assertEqual(p.returncode, 0, p.stderr)
		url = self.key_url("dbx-key-2048", new)
		self.assertEqual(len(writes.patches(self.emu.requests())), 1)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)
		self.assertEqual(writes.read(os.path.join(d, "key_url")), url + "\n")
		self.assert_no_last_write(d)
		self.assert_clean(d)

	def test_sed_in_place_invalid_value_refused(self):
		sub, rg, name, d, old, new = self.versioned_order()
		before = self.job(sub, rg, name)
		shown = writes.read(os.path.join(d, "key_url"))
		self.emu.reset_log()
		p = writes.sh("sed -i 's#https://#http://#' %s" % writes.q(os.path.join(d, "key_url")))
		self.assertNotEqual(p.returncode, 0, p)
		self.assertEqual(writes.patches(self.emu.requests()), [])
		self.assert_unchanged(before, sub, rg, name)
		self.assertEqual(writes.read(os.path.join(d, "key_url")), shown)
		self.assert_block(d, "SsemUserErrorKeyVaultUrlWithInvalidScheme")
		self.assert_clean(d)

	@staticmethod
	def ex_program():
		for prog in ("vim.tiny", "vim", "ex"):
			path = shutil.which(prog)
			if path:
				return path
		return None

	def test_vim_ex_saves(self):
		ex = self.ex_program()
		if not ex:
			self.skipTest("no vim or ex installed")
		sub, rg, name, d, old, new = self.versioned_order()
		self.emu.reset_log()
		# -u NONE: no user vimrc; the defaults (writebackup, swap file in the directory) stay.
		p = writes.sh("HOME=%s %s -u NONE -i NONE -es -c %s -c wq %s < /dev/null" % (
			writes.q(self.mnt.tmp), writes.q(ex), writes.q("%%s/%s/%s/" % (old, new)),
			writes.q(os.path.join(d, "key_url"))))
		self.assertEqual(p.returncode, 0, p)
		url = self.key_url("dbx-key-2048", new)
		self.assertEqual(len(writes.patches(self.emu.requests())), 1)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)
		self.assertEqual(writes.read(os.path.join(d, "key_url")), url + "\n")
		self.assert_clean(d)

	def test_temporary_files_stay_local(self):
		sub, rg, name, d = self.new_order("cm-system")
		other = self.new_order("cm-system")[3]
		before = self.job(sub, rg, name)
		self.emu.reset_log()
		t = os.path.join(d, ".key_url.swp")
		fd = os.open(t, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
		try:
			self.assertEqual(os.write(fd, b"hello\n"), 6)
			self.assertEqual(os.pread(fd, 100, 0), b"hello\n")
			os.ftruncate(fd, 2)
			self.assertEqual(os.fstat(fd).st_size, 2)
			self.expect_errno(errno.EFBIG, os.pwrite, fd, b"x", 64 * 1024)
		finally:
			os.close(fd)
		st = os.stat(t)
		self.assertEqual(st.st_mode & 0o7777, 0o600)
		self.assertEqual(st.st_uid, os.getuid())
		self.assertIn(".key_url.swp", os.listdir(d))
		# Owner-writable, or default_permissions would refuse the editor before the mount.
		self.assertEqual(os.stat(d).st_mode & 0o7777, 0o755)
		self.expect_errno(errno.EEXIST, os.open, t, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
		with open(t) as f:
			self.assertEqual(f.read(), "he")
		os.rename(t, os.path.join(d, "4913"))
		self.assertFalse(os.path.exists(t))
		t = os.path.join(d, "4913")
		self.expect_errno(errno.EXDEV, os.rename, t, os.path.join(other, "4913"))
		self.expect_errno(errno.EACCES, os.rename, t, os.path.join(d, "status"))
		self.expect_errno(errno.EPERM, os.rename, os.path.join(d, "key_url"),
				  os.path.join(d, "key_url~"))
		os.unlink(t)
		names = []
		try:
			for i in range(17):
				n = os.path.join(d, "tmp%02d" % i)
				if i == 16:
					self.expect_errno(errno.ENOSPC, open, n, "w")
				else:
					open(n, "w").close()
					names.append(n)
		finally:
			for n in names:
				os.unlink(n)
		self.assert_clean(d)
		self.assert_unchanged(before, sub, rg, name)
		sent = [r for r in self.emu.requests() if r["method"] != "GET"]
		self.assertEqual(sent, [], "a temporary file reached Azure")


if __name__ == "__main__":
	writes.main()
