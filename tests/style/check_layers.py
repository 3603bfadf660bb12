#!/usr/bin/env python3
"""The layering rules of docs/architecture.md, "Rooms", checked on every run.

The rooms of backend/ stay in their order (core, http, rules, cred, azure:
a room includes only its own headers and those of the rooms before it),
curl.h stays in backend/http/curl.c, FUSE stays in fs/, only the production
clock reads the system's clocks, errno is chosen in one function of
fs/ops.c, and every document a comment names (a *.md path) is one the
repository ships.
Prints one line per breach and exits 1, or exits 0 silently.

usage: check_layers.py [REPO]   (default: the repository this file is in)
"""

import os
import re
import subprocess
import sys

ROOMS = ["core", "http", "rules", "cred", "azure"]

# Which room each interface header of include/databoxfs belongs to.
INTERFACES = {
	"err.h": "core", "log.h": "core", "stats.h": "core", "timestamp.h": "core",
	"clock.h": "http", "http.h": "http",
	"cloud.h": "rules", "errors.h": "rules", "json_scan.h": "rules",
	"ssem.h": "rules", "validate.h": "rules",
	"auth.h": "cred",
	"arm.h": "azure", "keyvault.h": "azure", "order.h": "azure", "update.h": "azure",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]([^>"]+)[>"]', re.M)


def tracked(repo, *patterns):
	out = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--", *patterns],
			     capture_output=True, check=True, timeout=30).stdout
	return [p for p in out.decode().split("\0") if p]


def room_of(path):
	"""The room of a backend file or interface header, or None."""
	parts = path.split("/")
	if parts[0] == "backend" and len(parts) > 2 and parts[1] in ROOMS:
		return parts[1]
	if path.startswith("include/databoxfs/"):
		return INTERFACES.get(parts[-1], "unknown")
	return None


def header_room(name):
	"""The room an included "room/x.h" or "databoxfs/x.h" belongs to, or None."""
	if name.startswith("databoxfs/"):
		return INTERFACES.get(name.split("/", 1)[1], "unknown")
	head = name.split("/", 1)[0]
	return head if head in ROOMS and "/" in name else None


def main():
	repo = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(
		os.path.dirname(os.path.abspath(__file__))))
	breaches = []
	sources = tracked(repo, "*.c", "*.h")

	def text(path):
		with open(os.path.join(repo, path), encoding="utf-8", errors="replace") as f:
			return f.read()

	for path in sources:
		body = text(path)
		code = re.sub(r"/\*.*?\*/|//[^\n]*", "", body, flags=re.S)
		includes = INCLUDE.findall(code)
		room = room_of(path)
		if room == "unknown":
			breaches.append("%s: an interface header no room owns (add it to INTERFACES)" % path)
		elif room:
			for name in includes:
				other = header_room(name)
				if other == "unknown":
					breaches.append("%s: includes %s, which no room owns" % (path, name))
				elif other and ROOMS.index(other) > ROOMS.index(room):
					breaches.append("%s: room %s includes %s of the later room %s"
							% (path, room, name, other))
		if "curl/curl.h" in includes and path != "backend/http/curl.c":
			breaches.append("%s: includes curl.h (only backend/http/curl.c may)" % path)
		if any(n.startswith("fuse") for n in includes) and not path.startswith(("fs/", "tests/")):
			breaches.append("%s: includes FUSE outside fs/" % path)
		if path.startswith(("backend/", "fs/")) and path != "backend/http/clock.c":
			for call in ("time(NULL)", "clock_gettime(", "gettimeofday("):
				if call in code and not (call == "gettimeofday(" and
							 path == "backend/core/log.c"):
					breaches.append("%s: calls %s (only the production clock reads the "
							"system's clocks)" % (path, call))
		if path.startswith("fs/") and path != "fs/ops.c" and re.search(
				r"\breturn\s+-?E[A-Z]{3,}\b", code):
			breaches.append("%s: returns an errno (only dbx_errno in fs/ops.c chooses one)"
					% path)

	# Every document a comment names (a *.md path) is a file of this repository.
	files = tracked(repo)
	for path in files:
		if path.startswith("docs/") or not re.search(r"(\.(c|h|py|sh|txt)|^scripts/[^/]+)$", path):
			continue
		body = text(path)
		if path.endswith((".c", ".h")):
			body = " ".join(re.findall(r"/\*.*?\*/|//[^\n]*", body, flags=re.S))
		for cited in sorted(set(re.findall(r"[A-Za-z0-9_./-]+\.md\b", body))):
			name = re.sub(r"^(\.+/)+", "", cited)
			if not any(f == name or f.endswith("/" + name) for f in files):
				breaches.append("%s: cites %s, which the repository does not ship" % (path, cited))

	sys.stdout.write("".join(b + "\n" for b in breaches))
	return 1 if breaches else 0


if __name__ == "__main__":
	sys.exit(main())
