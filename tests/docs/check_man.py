#!/usr/bin/env python3
"""The man page, docs/databoxfs.8, checked on every run: it renders with
groff -man -ww and man -l without a warning, and it stays true to the code
and the contract it summarises:
- every entry of fs/main.c's option table (option_spec) is an item of
  OPTIONS, with the default that --help (usage() in fs/main.c) states;
- every variable a credential file may set (the names table of
  backend/cred/credfile.c) is named in CREDENTIAL FILE;
- ERRNO lists exactly the errno values of docs/formats.md, "errno".
Prints one line per problem and exits 1, or exits 0 silently.

usage: check_man.py [REPO]   (default: the repository this file is in)
"""

import os
import re
import shutil
import subprocess
import sys


def sections(text):
	"""{SECTION HEADING: body} of man's rendered text."""
	out, name = {}, None
	for line in text.split("\n"):
		if re.match(r"^[A-Z][A-Z ]+$", line):
			name = line.strip()
			out[name] = ""
		elif name:
			out[name] += line + "\n"
	return out


def c_strings(code):
	"""The concatenation of the C string literals in code."""
	return "".join(bytes(s, "utf-8").decode("unicode_escape")
		       for s in re.findall(r'"((?:[^"\\]|\\.)*)"', code))


def main():
	repo = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(
		os.path.dirname(os.path.abspath(__file__))))
	page = os.path.join(repo, "docs", "databoxfs.8")
	problems = []

	p = subprocess.run(["groff", "-man", "-t", "-ww", "-z", page], capture_output=True,
			   text=True, timeout=60)
	if p.returncode != 0 or p.stderr:
		problems.append("groff -man -ww: exit %d: %s" % (p.returncode, p.stderr.strip()))
	if not shutil.which("man"):
		print("check_man: man is not installed, rendering with groff -Tutf8", file=sys.stderr)
		p = subprocess.run(["groff", "-man", "-t", "-Tutf8", "-P-cbou", page],
				   capture_output=True, text=True, timeout=60)
	else:
		p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
				   timeout=60, env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="",
							LANG="C.UTF-8"))
	if p.returncode != 0 or p.stderr:
		problems.append("man -l: exit %d: %s" % (p.returncode, p.stderr.strip()))
	# Undo overstriking and hyphenation at line ends (U+2010), then read U+2010 as '-'.
	text = re.sub(r".\x08", "", p.stdout)
	text = re.sub("\u2010\n +", "", text).replace("\u2010", "-").replace("\u2011", "-")
	sec = sections(text)
	for want in ("OPTIONS", "ERRNO", "CREDENTIAL FILE", "AUTHENTICATION", "THE ERRORS FILE",
		     "RUNNING AS A SERVICE", "FSTAB AND AUTOMOUNT", "EXAMPLES"):
		if want not in sec:
			problems.append("no section %s" % want)
	options = sec.get("OPTIONS", "")
	# An item of OPTIONS: its head line, at the first indent, and its body.
	items = {}
	head = None
	for line in options.split("\n"):
		m = re.match(r"^ {7}(-\S.*)$", line)
		if m:
			# A short head shares its line with the body, after two or more blanks.
			parts = re.split(r" {2,}", m.group(1), maxsplit=1)
			head = parts[0]
			items[head] = (parts[1] if len(parts) > 1 else "") + " "
		elif head:
			items[head] += line.strip() + " "

	with open(os.path.join(repo, "fs", "main.c")) as f:
		main_c = f.read()
	table = re.search(r"option_spec\[\] = \{(.*?)\};", main_c, re.S).group(1)
	api = re.search(r'#define DEFAULT_API_VERSION "([^"]+)"', main_c).group(1)
	usage = c_strings(re.search(r"static void usage\(.*?\n\}", main_c, re.S).group(0))
	usage = usage.replace("%s", api)
	for spec in re.findall(r'(?:OPT|FUSE_OPT_KEY)\("([^"]+)"', table):
		name = spec.replace("%s", "")
		item = "-o " + name if not name.startswith("-") else name
		found = [h for h in items if h == item or (item.endswith("=") and h.startswith(item))
			 or item in h.split(", ")]
		if not found:
			problems.append("option %s of fs/main.c's table is not an item of OPTIONS" % item)
			continue
		if not name.endswith("="):
			continue
		# The default --help states, if any, is the man page's too.
		m = re.search(r"-o %s\S*\s+(.*?)(?=\n    -|\n\n)" % re.escape(name), usage, re.S)
		said = " ".join(m.group(1).split()) if m else ""
		d = re.search(r"\(default ([^;),]+)", said) or re.search(r"(\S+) \(default\)", said)
		if d:
			body = " ".join(items[found[0]].split())
			if not re.search(r"default:? %s\b|%s \(default" % (re.escape(d.group(1)),
								 re.escape(d.group(1))), body):
				problems.append("option %s: --help says the default is %s, the man page "
						"does not" % (item, d.group(1)))

	with open(os.path.join(repo, "backend", "cred", "credfile.c")) as f:
		credfile = f.read()
	names = re.findall(r'"([A-Z_]+)"', re.search(r"names\[\] = \{(.*?)\};", credfile,
							 re.S).group(1))
	if not names:
		problems.append("no names table in backend/cred/credfile.c")
	for n in names:
		if n not in sec.get("CREDENTIAL FILE", ""):
			problems.append("CREDENTIAL FILE does not name %s" % n)

	with open(os.path.join(repo, "docs", "formats.md")) as f:
		formats = f.read()
	table = re.search(r"\n## errno\n(.*?)\n## ", formats, re.S).group(1)
	want = set(re.findall(r"^\| `(E[A-Z]+)` \|", table, re.M))
	have = set(re.findall(r"^ {7}(E[A-Z]+)\s", sec.get("ERRNO", ""), re.M))
	for e in sorted(want - have):
		problems.append("ERRNO lacks %s (docs/formats.md, errno)" % e)
	for e in sorted(have - want):
		problems.append("ERRNO has %s, which docs/formats.md does not" % e)

	sys.stdout.write("".join(p + "\n" for p in problems))
	return 1 if problems else 0


if __name__ == "__main__":
	sys.exit(main())
