#!/usr/bin/python3
"""smoke.py: end-to-end smoke test of databox-emulator over real TLS.

Starts the emulator on a generated world (45 orders, page size 10), and
checks the wire behaviour clients depend on: Entra token errors, paged job
lists (by subscription and resource group, following nextLink verbatim),
GET with and without $expand=details, ARM 401s, api-version errors, a 429
fault with Retry-After then success, a dropped connection, counters and the
request log, Key Vault challenge and key bundles (real modulus sizes),
vault and identity lookups, the PATCH long-running operation, latency;
then client assertions (certificates made with openssl, federated tokens),
the IMDS and App Service endpoints, token lifetime and statistics; then the
service's rules: one refused PATCH per Ssem code (the job untouched), 409 on
closed jobs, an armed operation failure, the DataCopy re-checks after each
admin mutation (key disabled, expired, deleted; policy revoked; purge
protection off; identity deleted or dropped; tenant move and its documented
recovery; vault deleted). Bounded by an alarm; the emulator is always stopped.
"""
import argparse
import base64
import email.utils
import hashlib
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emutest  # noqa: E402
from emutest import Emulator  # noqa: E402

ARM = "management.azure.com"
check = emutest.Checks()


def b64url_len_bits(s):
	raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
	return int.from_bytes(raw, "big").bit_length()


def list_all(emu, tok, path, headers=None):
	"""Follow nextLink verbatim; return (items, pages)."""
	items, pages = [], 0
	r = emu.https(ARM, "GET", path, dict({"Authorization": "Bearer " + tok}, **(headers or {})))
	while True:
		check(r.status == 200, "list page %d of %s" % (pages + 1, path.split("?")[0]), repr(r))
		d = r.json()
		items += d["value"]
		pages += 1
		link = d.get("nextLink")
		if not link:
			return items, pages
		check(link.startswith("https://management.azure.com/") and "%24skipToken=" in link,
		      "nextLink is absolute on the request host with %24skipToken", link)
		r = emu.url(link, headers={"Authorization": "Bearer " + tok})


def run(emu):
	w = emu.world
	client = w["clients"][0]
	sub = w["subscriptions"][0]["subscriptionId"]
	sub2 = w["subscriptions"][1]["subscriptionId"]
	jobs_sub = [j for j in w["jobs"] if j["id"].split("/")[2] == sub]
	rg = jobs_sub[0]["id"].split("/")[4]
	jobs_rg = [j for j in jobs_sub if j["id"].split("/")[4] == rg]
	V = "2025-07-01"

	# ---- Entra ----
	form = {"grant_type": "client_credentials", "client_id": client["client_id"],
		"client_secret": "wrong", "scope": "https://management.azure.com/.default"}
	hdr = {"Content-Type": "application/x-www-form-urlencoded"}
	tpath = "/%s/oauth2/v2.0/token" % client["tenant_id"]
	r = emu.https("login.microsoftonline.com", "POST", tpath, hdr, urllib.parse.urlencode(form))
	check(r.status == 401 and r.json()["error"] == "invalid_client"
	      and r.json()["error_codes"] == [7000215], "wrong secret -> 401 invalid_client", repr(r))
	r = emu.https("login.microsoftonline.com", "POST", tpath, hdr,
		      urllib.parse.urlencode(dict(form, client_id="00000000-0000-0000-0000-000000000001")))
	check(r.status == 400 and r.json()["error"] == "unauthorized_client"
	      and "AADSTS700016" in r.json()["error_description"], "unknown client -> 400", repr(r))
	r = emu.https("login.microsoftonline.com", "POST",
		      "/11111111-1111-1111-1111-111111111111/oauth2/v2.0/token", hdr,
		      urllib.parse.urlencode(form))
	check(r.status == 400 and "AADSTS90002" in r.json()["error_description"],
	      "unknown tenant -> 400 AADSTS90002", repr(r))
	f2 = dict(form, client_secret=client["client_secret"])
	del f2["scope"]
	r = emu.https("login.microsoftonline.com", "POST", tpath, hdr, urllib.parse.urlencode(f2))
	check(r.status == 400 and r.json()["error"] == "invalid_scope", "missing scope -> 400", repr(r))
	r = emu.https("login.microsoftonline.com", "GET",
		      "/%s/v2.0/.well-known/openid-configuration" % client["tenant_id"])
	check(r.status == 200 and r.json()["token_endpoint"].endswith("/oauth2/v2.0/token"),
	      "openid-configuration", repr(r))
	r = emu.https("login.microsoftonline.com", "POST", "/%s/oauth2/token" % client["tenant_id"],
		      hdr, urllib.parse.urlencode({
		      	"grant_type": "client_credentials", "client_id": client["client_id"],
		      	"client_secret": client["client_secret"],
		      	"resource": "https://management.core.windows.net/"}))
	check(r.status == 200 and isinstance(r.json()["expires_in"], str), "v1 token endpoint", repr(r))
	tok = emu.token()
	kvtok = emu.token("https://vault.azure.net/.default")
	auth = {"Authorization": "Bearer " + tok}

	# ---- ARM: subscriptions ----
	r = emu.https(ARM, "GET", "/subscriptions?api-version=2022-12-01",
		      dict(auth, **{"x-ms-client-request-id": "smoke-1",
				    "x-ms-correlation-request-id": "corr-1"}))
	check(r.status == 200 and r.json()["count"]["value"] == len(w["subscriptions"]),
	      "list subscriptions", repr(r))
	check(r.header("x-ms-client-request-id") == "smoke-1"
	      and r.header("x-ms-correlation-request-id") == "corr-1"
	      and r.header("x-ms-request-id") and r.header("x-ms-routing-request-id")
	      and r.header("x-ms-ratelimit-remaining-subscription-reads"),
	      "ARM request-id headers", str(r.headers))
	check(r.header("Content-Type") == "application/json; charset=utf-8", "content type")

	# ---- ARM: paged lists ----
	items, pages = list_all(emu, tok, "/subscriptions/%s/providers/Microsoft.DataBox/jobs?api-version=%s" % (sub, V))
	check(len(items) == len(jobs_sub) and pages == (len(jobs_sub) + 9) // 10,
	      "list by subscription: %d jobs in %d pages" % (len(items), pages))
	check(sorted(i["name"] for i in items) == sorted(j["name"] for j in jobs_sub),
	      "list by subscription has the world's jobs")
	check(all("/resourcegroups/" in i["id"] for i in items), "list ids use 'resourcegroups'")
	check(all(i["properties"]["details"].get("jobStages") for i in items), "list items carry jobStages")
	check(all("etag" not in i for i in items), "no etag")
	items, pages = list_all(emu, tok, "/SUBSCRIPTIONS/%s/resourceGroups/%s/providers/microsoft.databox/JOBS?api-version=%s" % (sub, rg, V))
	check(len(items) == len(jobs_rg), "list by resource group (case-insensitive path): %d jobs, %d pages" % (len(items), pages))
	r = emu.https(ARM, "GET", "/subscriptions/%s/resourceGroups/rg-keys/providers/Microsoft.DataBox/jobs?api-version=%s" % (sub, V), auth)
	check(r.status == 200 and r.json() == {"value": []}, "RG without jobs -> empty value", repr(r))
	r = emu.https(ARM, "GET", "/subscriptions/%s/resourceGroups/nope/providers/Microsoft.DataBox/jobs?api-version=%s" % (sub, V), auth)
	check(r.status == 404 and r.json()["error"]["code"] == "ResourceGroupNotFound", "unknown RG -> 404", repr(r))
	r = emu.https(ARM, "GET", "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.DataBox/jobs?api-version=%s" % V, auth)
	check(r.status == 404 and r.json()["error"]["code"] == "SubscriptionNotFound", "unknown subscription -> 404", repr(r))

	# ---- ARM: one job ----
	job = jobs_rg[0]
	jpath = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s" % (sub, rg, job["name"])
	r = emu.https(ARM, "GET", jpath + "?api-version=%s&%%24expand=details" % V, auth)
	check(r.status == 200 and r.json() == job, "GET job with $expand=details equals the world", repr(r))
	r = emu.https(ARM, "GET", jpath + "?api-version=2020-11-01", auth)
	d = r.json()
	check(r.status == 200 and "details" in d["properties"] and "jobStages" not in d["properties"]["details"],
	      "GET job without $expand keeps details, drops jobStages", repr(r))
	r = emu.https(ARM, "GET", jpath[:-len(job["name"])] + "order-9999?api-version=%s" % V, auth)
	check(r.status == 404 and r.json()["error"]["code"] == "ResourceNotFound"
	      and "order-9999" in r.json()["error"]["message"], "unknown job -> 404 ResourceNotFound", repr(r))

	# ---- ARM: errors ----
	r = emu.https(ARM, "GET", jpath)
	check(r.status == 401 and r.json()["error"]["code"] == "AuthenticationFailed"
	      and 'authorization_uri="https://login.microsoftonline.com/' in (r.header("WWW-Authenticate") or ""),
	      "no token -> 401 AuthenticationFailed + WWW-Authenticate", repr(r))
	r = emu.https(ARM, "GET", jpath + "?api-version=" + V, {"Authorization": "Bearer abc.def.ghi"})
	check(r.status == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken", "bad token -> 401", repr(r))
	r = emu.https(ARM, "GET", jpath + "?api-version=" + V, {"Authorization": "Bearer " + kvtok})
	check(r.status == 401 and r.json()["error"]["code"] == "InvalidAuthenticationTokenAudience",
	      "vault token at ARM -> 401 audience", repr(r))
	r = emu.https(ARM, "GET", jpath, auth)
	check(r.status == 400 and r.json()["error"]["code"] == "MissingApiVersionParameter", "missing api-version", repr(r))
	r = emu.https(ARM, "GET", jpath + "?api-version=2019-09-01", auth)
	check(r.status == 400 and r.json()["error"]["code"] == "NoRegisteredProviderFound", "old api-version", repr(r))
	stranger = emu.token(client=w["clients"][1])
	r = emu.https(ARM, "GET", jpath + "?api-version=" + V, {"Authorization": "Bearer " + stranger})
	check(r.status == 401 and r.json()["error"]["code"] == "InvalidAuthenticationTokenTenant",
	      "token of another tenant -> 401", repr(r))

	# ---- faults ----
	lpath = "/subscriptions/%s/providers/Microsoft.DataBox/jobs" % sub
	st, fid = emu.admin_status("POST", "/admin/faults", {"service": "arm", "method": "GET", "path_prefix": lpath.upper(),
						      "status": 429, "retry_after": "1", "count": 1})
	check(st == 200 and isinstance(fid["id"], int), "add 429 fault")
	r = emu.https(ARM, "GET", lpath + "?api-version=" + V, auth)
	check(r.status == 429 and r.header("Retry-After") == "1" and r.json()["error"]["code"] == "TooManyRequests",
	      "fault -> 429 + Retry-After", repr(r))
	r = emu.https(ARM, "GET", lpath + "?api-version=" + V, auth)
	check(r.status == 200, "then success", repr(r))
	emu.admin_status("POST", "/admin/faults", {"service": "arm", "path_prefix": lpath, "drop": True, "count": 1})
	try:
		r = emu.https(ARM, "GET", lpath + "?api-version=" + V, auth)
		dropped = False
	except (http.client.RemoteDisconnected, ConnectionError, OSError):
		dropped = True
	check(dropped, "drop fault closes the connection")
	st, _ = emu.admin_status("DELETE", "/admin/faults")
	check(st == 200 and emu.admin_status("GET", "/admin/faults")[1] == [], "clear faults")

	# ---- counters and request log ----
	st, c = emu.admin_status("GET", "/admin/counters")
	key = "GET management.azure.com" + lpath
	check(st == 200 and c["by_path"].get(key, 0) >= 3 and c["total"] > 10
	      and c["by_service"]["entra"] >= 6, "counters", json.dumps(c)[:300])
	st, log = emu.admin_status("GET", "/admin/requests")
	check(any(e["client_request_id"] == "smoke-1" for e in log), "request log keeps client request id")
	check(all("body" not in e for e in log if e["service"] == "entra"), "token bodies are not logged")
	emu.admin_status("POST", "/admin/counters/reset")
	emu.admin_status("POST", "/admin/requests/reset")
	check(emu.admin_status("GET", "/admin/counters")[1]["total"] == 0 and emu.admin_status("GET", "/admin/requests")[1] == [],
	      "counters and log reset")

	# ---- Key Vault ----
	vault = w["vaults"][0]
	host = urllib.parse.urlsplit(vault["properties"]["vaultUri"]).hostname
	r = emu.https(host, "GET", "/keys/dbx-key-2048?api-version=7.4")
	wa = r.header("WWW-Authenticate") or ""
	check(r.status == 401 and 'resource="https://vault.azure.net"' in wa
	      and 'authorization="https://login.microsoftonline.com/%s"' % vault["properties"]["tenantId"] in wa,
	      "Key Vault challenge without token", repr(r) + wa)
	kva = {"Authorization": "Bearer " + kvtok}
	moduli = {}
	for kname, bits in (("dbx-key-2048", 2048), ("dbx-key-3072", 3072)):
		key = [k for k in vault["keys"] if k["name"] == kname][0]
		latest = key["versions"][-1]["version"]
		r = emu.https(host, "GET", "/keys/%s?api-version=7.4" % kname, kva)
		d = r.json()
		moduli[kname] = d["key"].get("n")
		check(r.status == 200 and d["key"]["kid"] == "https://%s/keys/%s/%s" % (host, kname, latest)
		      and b64url_len_bits(d["key"]["n"]) == bits and d["key"]["e"] == "AQAB"
		      and d["attributes"]["recoveryLevel"] == "Recoverable",
		      "GET key %s: latest version, %d-bit modulus" % (kname, bits), repr(r))
	key = vault["keys"][0]
	r = emu.https(host, "GET", "/keys/%s/%s?api-version=7.5" % (key["name"], key["versions"][0]["version"]), kva)
	check(r.status == 200 and r.json()["key"]["kid"].endswith(key["versions"][0]["version"]), "GET key version", repr(r))
	r = emu.https(host, "GET", "/keys/%s/versions?api-version=7.5" % key["name"], kva)
	check(r.status == 200 and len(r.json()["value"]) == len(key["versions"]), "list key versions", repr(r))
	r = emu.https(host, "GET", "/keys/dbx-key-disabled/?api-version=7.4", kva)
	check(r.status == 200 and r.json()["attributes"]["enabled"] is False, "disabled key shows enabled=false", repr(r))
	r = emu.https(host, "GET", "/keys/nope?api-version=7.4", kva)
	check(r.status == 404 and r.json()["error"]["code"] == "KeyNotFound", "unknown key -> 404 KeyNotFound", repr(r))
	r = emu.https(host, "GET", "/keys/dbx-key-2048", kva)
	check(r.status == 400 and r.json()["error"]["code"] == "BadParameter", "KV missing api-version", repr(r))
	r = emu.https(host, "GET", "/keys/dbx-key-2048?api-version=7.4", auth)
	check(r.status == 401, "ARM token at Key Vault -> 401", repr(r))
	weak = [v for v in w["vaults"] if "enablePurgeProtection" not in v["properties"]][0]
	whost = urllib.parse.urlsplit(weak["properties"]["vaultUri"]).hostname
	r = emu.https(whost, "GET", "/keys/dbx-key-2048?api-version=7.4", kva)
	check(r.status == 200 and r.json()["attributes"]["recoveryLevel"] == "Recoverable+Purgeable",
	      "vault without purge protection -> Recoverable+Purgeable", repr(r))
	try:
		emu.https("no-such-vault.vault.azure.net", "GET", "/keys/k?api-version=7.4", kva)
		dropped = False
	except (http.client.RemoteDisconnected, ConnectionError, OSError):
		dropped = True
	check(dropped, "unknown vault host -> connection dropped")

	# ---- vault / identity lookups through ARM ----
	flt = urllib.parse.quote("resourceType eq 'Microsoft.KeyVault/vaults' and name eq '%s'" % vault["name"].upper())
	r = emu.https(ARM, "GET", "/subscriptions/%s/resources?$filter=%s&api-version=2021-04-01" % (sub, flt), auth)
	check(r.status == 200 and [v["id"] for v in r.json()["value"]] == [vault["id"]], "resources $filter finds the vault", repr(r))
	r = emu.https(ARM, "GET", vault["id"] + "?api-version=2024-11-01", auth)
	check(r.status == 200 and "keys" not in r.json() and r.json()["properties"]["enablePurgeProtection"] is True,
	      "GET vault via ARM", repr(r))
	r = emu.https(ARM, "GET", "/subscriptions/%s/providers/Microsoft.KeyVault/vaults?api-version=2024-11-01" % sub, auth)
	want = sorted(v["id"] for v in w["vaults"] if v["id"].split("/")[2] == sub)
	check(r.status == 200 and sorted(v["id"] for v in r.json()["value"]) == want
	      and all("keys" not in v for v in r.json()["value"]), "list vaults of a subscription", repr(r))
	r = emu.https(ARM, "GET", "/subscriptions/%s/resourcegroups?api-version=2021-04-01" % sub, auth)
	want = sorted(g["name"] for g in w["resource_groups"] if g["subscriptionId"] == sub)
	check(r.status == 200 and sorted(g["name"] for g in r.json()["value"]) == want, "list resource groups", repr(r))
	r = emu.https(ARM, "GET", "/subscriptions/%s/resourceGroups/%s?api-version=2021-04-01" % (sub, rg.upper()), auth)
	check(r.status == 200 and r.json()["name"] == rg, "GET resource group answers with the stored name", repr(r))
	uai = w["identities"][0]
	r = emu.https(ARM, "GET", uai["id"] + "?api-version=2023-01-31", auth)
	check(r.status == 200 and r.json()["properties"]["principalId"] == uai["principalId"], "GET identity", repr(r))

	# ---- PATCH as a long-running operation ----
	# an open order whose system identity the vault already trusts
	pjob = [j for j in jobs_sub if j["properties"]["details"].get("keyEncryptionKey", {})
		.get("identityProperties", {}).get("type") == "SystemAssigned"
		and j["properties"]["status"] not in ("Completed", "CompletedWithErrors", "Cancelled")
		and "error" not in j["properties"]][0]
	prg = pjob["id"].split("/")[4]
	ppath = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s" % (sub, prg, pjob["name"])
	kek = {"kekType": "CustomerManaged",
	       "kekUrl": "https://%s/keys/dbx-key-2048/%s" % (host, vault["keys"][0]["versions"][-1]["version"]),
	       "kekVaultResourceID": vault["id"]}
	r = emu.https(ARM, "PATCH", ppath + "?api-version=" + V, auth,
		      {"properties": {"details": {"keyEncryptionKey": kek}}})
	loc = r.header("Location") or ""
	check(r.status == 202 and "/operationResults/" in loc and not r.body, "PATCH -> 202 + Location", repr(r))
	r = emu.url(loc, headers=auth)
	check(r.status == 202 and "/operationResults/" in (r.header("Location") or ""), "poll 1 -> 202 operationResults", repr(r))
	r = emu.url(r.header("Location"), headers=auth)
	check(r.status == 202 and (r.header("Location") or "").split("?")[0].endswith(ppath), "poll 2 -> 202 Location job", repr(r))
	r = emu.url(r.header("Location") + "&$expand=details", headers=auth)
	check(r.status == 200 and r.json()["properties"]["details"]["keyEncryptionKey"] == kek, "job shows the new key", repr(r))
	st, stored = emu.admin_status("GET", "/admin/jobs/%s/%s/%s" % (sub, prg, pjob["name"]))
	check(st == 200 and stored["properties"]["details"]["keyEncryptionKey"] == kek, "admin job view")
	uai0 = [i for i in w["identities"] if i["id"].split("/")[2] == sub][0]
	r = emu.https(ARM, "PATCH", ppath + "?api-version=" + V, auth, {
		"identity": {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {uai0["id"]: {}}},
		"properties": {"details": {"keyEncryptionKey": dict(kek, identityProperties={
			"type": "UserAssigned", "userAssigned": {"resourceId": uai0["id"]}})}}})
	check(r.status == 202, "PATCH identity -> 202", repr(r))
	st, stored = emu.admin_status("GET", "/admin/jobs/%s/%s/%s" % (sub, prg, pjob["name"]))
	ident = stored["identity"]
	check(ident["type"] == "SystemAssigned,UserAssigned" and ident.get("principalId")
	      and ident["userAssignedIdentities"][uai0["id"]] == {"principalId": uai0["principalId"],
								  "clientId": uai0["clientId"]},
	      "PATCH identity fills principal ids like the service", json.dumps(ident))
	st, log = emu.admin_status("GET", "/admin/requests")
	check(any(e["method"] == "PATCH" and "userAssignedIdentities" in e.get("body", "") for e in log),
	      "request log keeps PATCH bodies")

	# ---- expired tokens, world replacement ----
	st, world = emu.admin_status("GET", "/admin/world")
	world["token_lifetime_s"] = 1
	st, _ = emu.admin_status("PUT", "/admin/world", world)
	check(st == 200, "PUT /admin/world")
	short = emu.token()
	time.sleep(1.2)
	r = emu.https(ARM, "GET", jpath + "?api-version=" + V, {"Authorization": "Bearer " + short})
	check(r.status == 401 and r.json()["error"]["code"] == "ExpiredAuthenticationToken", "expired token -> 401", repr(r))
	r = emu.https(host, "GET", "/keys/dbx-key-2048?api-version=7.4", kva)
	check(r.status == 200 and r.json()["key"]["n"] == moduli["dbx-key-2048"], "keys survive world replacement")
	world2 = json.loads(json.dumps(world))
	for v in world2["vaults"]:
		for k in v["keys"]:
			for ver in k["versions"]:
				ver.pop("n", None)
				ver.pop("e", None)
	check(emu.admin_status("PUT", "/admin/world", world2)[0] == 200, "PUT a world without key material")
	r = emu.https(host, "GET", "/keys/dbx-key-3072?api-version=7.4", kva)
	check(r.status == 200 and r.json()["key"]["n"] == moduli["dbx-key-3072"], "same key material from the cache")
	world["token_lifetime_s"] = 3599
	check(emu.admin_status("PUT", "/admin/world", world)[0] == 200, "restore token lifetime")

	# ---- admin: job replacement, token expiry and revocation ----
	tok = emu.token()
	auth = {"Authorization": "Bearer " + tok}
	st, stored = emu.admin_status("GET", "/admin/jobs/%s/%s/%s" % (sub, rg, job["name"]))
	stored["properties"]["status"] = "Completed"
	st, _ = emu.admin_status("PUT", "/admin/jobs/%s/%s/%s" % (sub, rg, job["name"]), stored)
	r = emu.https(ARM, "GET", jpath + "?api-version=" + V, auth)
	check(st == 200 and r.json()["properties"]["status"] == "Completed", "PUT /admin/jobs changes the job")
	st, _ = emu.admin_status("PUT", "/admin/jobs/%s/%s/other" % (sub, rg), stored)
	check(st == 400, "PUT /admin/jobs refuses a job whose id names another path")
	emu.admin_status("POST", "/admin/tokens/expire")
	r = emu.https(ARM, "GET", jpath + "?api-version=" + V, auth)
	check(r.status == 401 and r.json()["error"]["code"] == "ExpiredAuthenticationToken", "tokens/expire", repr(r))
	tok = emu.token()
	auth = {"Authorization": "Bearer " + tok}
	emu.admin_status("POST", "/admin/tokens/revoke")
	r = emu.https(ARM, "GET", jpath + "?api-version=" + V, auth)
	check(r.status == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken", "tokens/revoke", repr(r))
	tok = emu.token()
	auth = {"Authorization": "Bearer " + tok}

	# ---- latency ----
	emu.admin_status("POST", "/admin/latency", {"ms": 300})
	t0 = time.time()
	r = emu.https(ARM, "GET", "/subscriptions?api-version=2022-12-01", auth)
	dt = time.time() - t0
	emu.admin_status("POST", "/admin/latency", {"ms": 0})
	check(r.status == 200 and dt >= 0.3, "latency 300 ms applied (%.2fs)" % dt)

	# ---- sub 2 for completeness ----
	items, _ = list_all(emu, tok, "/subscriptions/%s/providers/Microsoft.DataBox/jobs?api-version=2020-11-01" % sub2)
	check(len(items) == len([j for j in w["jobs"] if j["id"].split("/")[2] == sub2]), "second subscription list")


def b64u(raw, pad=False):
	s = base64.urlsafe_b64encode(raw).decode()
	return s if pad else s.rstrip("=")


def make_cert(d, name):
	"""emutest.make_cert() -> (certificate PEM, key path, certificate DER)."""
	crt, key = emutest.make_cert(d, name)
	with open(crt) as f:
		pem = f.read()
	return pem, key, ssl.PEM_cert_to_DER_cert(pem)


def jwt_rs256(key, header, payload):
	h = b64u(json.dumps(header).encode())
	p = b64u(json.dumps(payload).encode())
	sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=(h + "." + p).encode(),
			     check=True, stdout=subprocess.PIPE, timeout=10).stdout
	return h + "." + p + "." + b64u(sig)


def entra_and_imds(emu):
	"""Client assertions (certificate, federated), IMDS and App Service, token lifetime and stats."""
	d = tempfile.mkdtemp(prefix="dbxemu-cert-")
	try:
		entra_and_imds_in(emu, d)
	finally:
		shutil.rmtree(d, ignore_errors=True)


def entra_and_imds_in(emu, d):
	w = emu.world
	c = w["clients"][0]
	tenant = c["tenant_id"]
	sub = w["subscriptions"][0]["subscriptionId"]
	login = "login.microsoftonline.com"
	tpath = "/%s/oauth2/v2.0/token" % tenant
	endpoint = "https://%s%s" % (login, tpath)
	hdr = {"Content-Type": "application/x-www-form-urlencoded"}
	pem, key, der = make_cert(d, "dbx-cert")
	_, other_key, _ = make_cert(d, "dbx-other")
	x5t = b64u(hashlib.sha1(der).digest(), pad=True)
	app = {"tenant_id": tenant, "client_id": "0c0ffee0-0000-4000-8000-00000000c0de",
	       "object_id": "0c0ffee0-0000-4000-8000-0000000000b1", "certificate_pem": pem}
	check(emu.admin_status("POST", "/admin/clients", app)[0] == 200, "admin: register an app with a certificate")
	emu.admin_status("POST", "/admin/requests/reset")

	def claims(**over):
		now = int(time.time())
		p = {"aud": endpoint, "iss": app["client_id"], "sub": app["client_id"], "exp": now + 600,
		     "iat": now, "nbf": now, "jti": str(uuid.uuid4())}
		p.update(over)
		return {k: v for k, v in p.items() if v is not None}

	def assertion_token(assertion, client_id=app["client_id"], scope="https://management.azure.com/.default", path=tpath):
		form = {"grant_type": "client_credentials", "client_id": client_id, "scope": scope,
			"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
			"client_assertion": assertion}
		return emu.https(login, "POST", path, hdr, urllib.parse.urlencode(form))

	good = jwt_rs256(key, {"alg": "RS256", "typ": "JWT", "x5t": x5t}, claims())
	r = assertion_token(good)
	check(r.status == 200 and r.json()["token_type"] == "Bearer", "certificate assertion (x5t padded) -> token", repr(r))
	r2 = emu.https(ARM, "GET", "/subscriptions?api-version=2022-12-01", {"Authorization": "Bearer " + r.json()["access_token"]})
	check(r2.status == 200 and r2.json()["count"]["value"] >= 1, "the certificate's token works on ARM", repr(r2))
	r = assertion_token(jwt_rs256(key, {"alg": "RS256", "typ": "JWT", "x5t": x5t.rstrip("=")},
				      claims(aud="https://%s/%s/oauth2/token" % (login, tenant))))
	check(r.status == 200, "unpadded x5t and the v1 token endpoint as aud are accepted", repr(r))

	def refused(assertion, status, code, what):
		r = assertion_token(assertion)
		d = r.json() or {}
		check(r.status == status and code in d.get("error_codes", []) and d.get("error") in ("invalid_client", "invalid_request"),
		      "assertion %s -> %d AADSTS%d" % (what, status, code), repr(r))

	refused(jwt_rs256(other_key, {"alg": "RS256", "typ": "JWT", "x5t": x5t}, claims()), 401, 700027, "signed by another key")
	refused(jwt_rs256(key, {"alg": "RS256", "typ": "JWT", "x5t": b64u(b"x" * 20)}, claims()), 401, 700027, "with an unknown x5t")
	refused(good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"), 401, 700027, "with a damaged signature")
	now = int(time.time())
	refused(jwt_rs256(key, {"alg": "RS256", "x5t": x5t}, claims(exp=now - 5, nbf=now - 700, iat=now - 700)), 401, 700024, "expired")
	refused(jwt_rs256(key, {"alg": "RS256", "x5t": x5t}, claims(nbf=now + 600, exp=now + 1200)), 401, 700024, "not yet valid")
	refused(jwt_rs256(key, {"alg": "RS256", "x5t": x5t}, claims(exp=now + 90 * 86400)), 401, 700024, "valid for 90 days")
	refused(jwt_rs256(key, {"alg": "RS256", "x5t": x5t}, claims(aud="https://login.microsoftonline.com/other/oauth2/v2.0/token")),
		400, 700212, "for another audience")
	refused(jwt_rs256(key, {"alg": "RS256", "x5t": x5t}, claims(iss=c["client_id"])), 400, 700021, "issued by another client")
	refused(jwt_rs256(key, {"alg": "RS256", "x5t": x5t}, claims(jti=None)), 400, 50027, "without jti")
	refused("not.a-jwt", 400, 50027, "that is no JWT")
	r = assertion_token(good, client_id=c["client_id"])
	check(r.status == 401 and 700027 in r.json()["error_codes"], "assertion for an app without a certificate -> 401 AADSTS700027", repr(r))

	wl = w["clients"][2]
	r = assertion_token(wl["federated_token"], client_id=wl["client_id"], scope="https://vault.azure.net/.default")
	check(r.status == 200, "federated (workload identity) token -> access token", repr(r))
	r = assertion_token(wl["federated_token"] + "x", client_id=wl["client_id"])
	check(r.status == 400 and 70021 in r.json()["error_codes"], "unknown federated token -> 400 AADSTS70021", repr(r))

	st, log = emu.admin_status("GET", "/admin/requests")
	toks = [e for e in log if e["service"] == "entra"]
	dump = json.dumps(log)
	check(toks and all(e.get("grant_type") == "client_credentials" and e.get("scope") for e in toks[:3]),
	      "request log: grant_type and scope of token requests", json.dumps(toks[:1]))
	check(good not in dump and wl["federated_token"] not in dump and "client_assertion" not in dump
	      and c["client_secret"] not in dump, "request log: no assertion or secret")

	# ---- token lifetime and statistics ----
	check(emu.admin_status("POST", "/admin/tokens/lifetime", {"seconds": 7})[0] == 200, "admin: token lifetime 7 s")
	r = assertion_token(jwt_rs256(key, {"alg": "RS256", "x5t": x5t}, claims()))
	check(r.status == 200 and r.json()["expires_in"] == 7, "tokens now live 7 s", repr(r))
	emu.admin_status("POST", "/admin/tokens/lifetime", {"seconds": 0})
	check(emu.admin_status("POST", "/admin/tokens/lifetime", {"seconds": -1})[0] == 400, "admin: negative lifetime -> 400")

	# ---- IMDS ----
	mi_sys = [m for m in w["managed_identities"] if m["system"]][0]
	mi_uai = [m for m in w["managed_identities"] if not m["system"]][0]
	q = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + urllib.parse.quote("https://management.azure.com")
	r = emu.imds(q)
	check(r.status == 400 and r.json() == {"error": "invalid_request", "error_description": "Required metadata header not specified"},
	      "IMDS without Metadata: true -> 400", repr(r))
	r = emu.imds(q, {"Metadata": "true"})
	d = r.json() or {}
	check(r.status == 200 and all(isinstance(d.get(k), str) for k in
				      ("access_token", "client_id", "expires_in", "expires_on", "ext_expires_in", "not_before", "resource", "token_type"))
	      and d["client_id"] == mi_sys["client_id"] and d["resource"] == "https://management.azure.com"
	      and int(d["expires_on"]) - int(d["not_before"]) == int(d["expires_in"]),
	      "IMDS: system identity token, string fields", repr(r))
	r2 = emu.https(ARM, "GET", "/subscriptions/%s/providers/Microsoft.DataBox/jobs?api-version=2025-07-01" % sub,
		       {"Authorization": "Bearer " + d["access_token"]})
	check(r2.status == 200 and r2.json()["value"], "IMDS token lists jobs on ARM", repr(r2))
	r = emu.imds(q + "&client_id=" + mi_uai["client_id"], {"Metadata": "true"})
	check(r.status == 200 and r.json()["client_id"] == mi_uai["client_id"], "IMDS: client_id picks the user-assigned identity", repr(r))
	r = emu.imds(q + "&msi_res_id=" + urllib.parse.quote(mi_uai["msi_res_id"]), {"Metadata": "true"})
	check(r.status == 200 and r.json()["client_id"] == mi_uai["client_id"], "IMDS: msi_res_id picks it too", repr(r))
	r = emu.imds(q + "&client_id=00000000-0000-4000-8000-000000000000", {"Metadata": "true"})
	check(r.status == 400 and r.json()["error_description"] == "Identity not found", "IMDS: unknown client_id -> 400 Identity not found", repr(r))
	r = emu.imds("/metadata/identity/oauth2/token?api-version=2018-02-01", {"Metadata": "true"})
	check(r.status == 400, "IMDS without resource -> 400", repr(r))
	vault = [v for v in w["vaults"] if v["id"].split("/")[2] == sub and "nopurge" not in v["name"]][0]
	kvq = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=" + mi_uai["client_id"]
	r = emu.imds(kvq, {"Metadata": "true"})
	r2 = emu.https(vault["name"] + ".vault.azure.net", "GET", "/keys/dbx-key-2048?api-version=7.4",
		       {"Authorization": "Bearer " + r.json()["access_token"]})
	check(r2.status == 200 and r2.json()["key"]["kid"], "IMDS token of the user-assigned identity reads a key its policy allows", repr(r2))

	# ---- App Service ----
	aq = "/msi/token?api-version=2019-08-01&resource=" + urllib.parse.quote("https://management.azure.com")
	r = emu.imds(aq)
	check(r.status == 401, "App Service endpoint without X-IDENTITY-HEADER -> 401", repr(r))
	r = emu.imds(aq, {"X-IDENTITY-HEADER": "wrong"})
	check(r.status == 401, "App Service endpoint with a wrong header -> 401", repr(r))
	r = emu.imds(aq, {"X-IDENTITY-HEADER": w["identity_header"]})
	d = r.json() or {}
	check(r.status == 200 and set(d) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
	      and isinstance(d["expires_on"], str) and d["token_type"] == "Bearer", "App Service token", repr(r))
	r2 = emu.https(ARM, "GET", "/subscriptions?api-version=2022-12-01", {"Authorization": "Bearer " + d["access_token"]})
	check(r2.status == 200, "App Service token works on ARM", repr(r2))

	st, stats = emu.admin_status("GET", "/admin/tokens/stats")
	check(st == 200 and stats["by_credential"].get("client_assertion_certificate", 0) >= 3
	      and stats["by_credential"].get("client_assertion_federated") == 1
	      and stats["by_credential"].get("imds", 0) >= 4 and stats["by_credential"].get("app_service") == 1
	      and stats["by_grant_type"].get("managed_identity", 0) >= 5
	      and stats["by_audience"].get("https://vault.azure.net", 0) >= 2
	      and stats["total"] == sum(stats["by_credential"].values()),
	      "tokens/stats counts per grant type, credential and audience", json.dumps(stats))
	st, cnt = emu.admin_status("GET", "/admin/counters")
	check(cnt["by_service"]["imds"] >= 9, "counters count IMDS requests", json.dumps(cnt["by_service"]))


SSEM = {
	"SsemUserErrorKeyVaultUrlWithInvalidScheme": "Only HTTPS is supported for passing the key vault URI.",
	"SsemUserErrorKeyVaultUrlInvalidHost": "The key vault URI host is not an allowed host in the geographical region.",
	"SsemUserErrorInvalidKeyVaultUrl": "An invalid key vault URI was used.",
	"SsemUserErrorKeyVaultDetailsNotFound": "Could not fetch the passkey as the associated key vault for the customer-managed key could not be found.",
	"SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled": "Key vault does not have soft delete or purge protection enabled.",
	"SsemUserErrorKeyDetailsNotFound": "Could not fetch the passkey as the customer-managed key could not be found.",
	"SsemUserErrorEncryptionKeyDisabled": "Could not fetch the passkey as the customer-managed key is disabled.",
	"SsemUserErrorEncryptionKeyExpired": "Could not fetch the passkey as the customer-managed key has expired.",
	"SsemUserErrorEncryptionKeyTypeNotSupported": "The encryption key type isn't supported for the operation.",
	"SsemUserErrorUserAssignedIdentityAbsent": "Could not fetch the passkey as the customer-managed key could not be found.",
	"SsemUserErrorKekUserIdentityNotFound": "Applied a customer-managed key but the user assigned identity that has access to the key was not found in the active directory.",
	"SsemUserErrorUserAssignedLimitReached": "Adding new User Assigned Identity failed as you have reached the limit on the total number of user assigned identities that can be added.",
	"SsemUserErrorSystemAssignedIdentityAbsent": "Could not fetch the passkey as the customer-managed key could not be found.",
	"SsemUserErrorKeyVaultBadRequestException": "Applied a customer-managed key but the key access has not been granted or has been revoked",
	"SsemUserErrorCrossTenantIdentityAccessForbidden": "Managed identity access operation failed.",
}


def cmk_rules(emu):
	"""The service's rules on PATCH (one check per Ssem code), DataCopy, admin mutations."""
	w = emu.admin_status("GET", "/admin/world")[1]
	sub = w["subscriptions"][0]["subscriptionId"]
	tenant = w["subscriptions"][0]["tenantId"]
	V = "2025-07-01"
	tok = emu.token()
	auth = {"Authorization": "Bearer " + tok}
	vault = [v for v in w["vaults"] if v["id"].split("/")[2] == sub and "nopurge" not in v["name"]][0]
	weak = [v for v in w["vaults"] if "nopurge" in v["name"]][0]
	host = vault["name"] + ".vault.azure.net"
	uai = [i for i in w["identities"] if i["id"].split("/")[2] == sub][0]
	open_jobs = [j for j in w["jobs"] if j["id"].split("/")[2] == sub
		     and j["properties"]["status"] in ("DeviceOrdered", "DevicePrepared", "Dispatched", "Delivered", "AtAzureDC")
		     and "error" not in j["properties"]]
	job = open_jobs[0]
	_, _, _, _, rg, _, _, _, name = job["id"].split("/")
	jpath = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s" % (sub, rg, name)
	apath = "/admin/jobs/%s/%s/%s" % (sub, rg, name)

	def stored(p=apath):
		return emu.admin_status("GET", p)[1]

	def patch(body, path=jpath):
		return emu.https(ARM, "PATCH", path + "?api-version=" + V, auth, body)

	def finish(r):
		"""Follow the LRO to the end; return the last response."""
		while r.status == 202:
			r = emu.url(r.header("Location"), headers=auth)
		return r

	def kek(url, vid=vault["id"], **extra):
		k = {"kekType": "CustomerManaged", "kekUrl": url}
		if vid is not None:
			k["kekVaultResourceID"] = vid
		k.update(extra)
		return {"properties": {"details": {"keyEncryptionKey": k}}}

	def refused(body, code, what, path=jpath, ap=apath):
		before = stored(ap)
		r = patch(body, path)
		d = r.json() or {}
		check(r.status == 400 and d.get("error", {}).get("code") == code
		      and d["error"]["message"].startswith(SSEM[code]) and r.header("x-ms-request-id"),
		      "PATCH %s -> 400 %s" % (what, code), repr(r))
		check(stored(ap) == before, "  ... and the job is untouched")

	def url_of(key, version=None, h=host):
		return "https://%s/keys/%s" % (h, key) + ("/" + version if version else "")

	latest = vault["keys"][0]["versions"][-1]["version"]
	good = url_of("dbx-key-2048", latest)

	# the job gets a system identity; the vault grants it access
	r = finish(patch({"identity": {"type": "SystemAssigned"}}))
	principal = stored()["identity"].get("principalId")
	check(r.status == 200 and stored()["identity"]["tenantId"] == tenant, "PATCH identity SystemAssigned", repr(r))
	st, _ = emu.admin_status("POST", "/admin/vaults/%s/policies" % vault["name"],
			  {"objectId": principal, "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}})
	check(st == 200, "admin: grant the job's principal get/wrapKey/unwrapKey")

	# ---- one refusal per rule ----
	refused(kek("http://%s/keys/dbx-key-2048" % host), "SsemUserErrorKeyVaultUrlWithInvalidScheme", "http:// key URL")
	refused(kek(url_of("dbx-key-2048", h=vault["name"] + ".vault.azure.cn")), "SsemUserErrorKeyVaultUrlInvalidHost", "China vault host on the public cloud")
	refused(kek(url_of("dbx-key-2048", h="example.com")), "SsemUserErrorKeyVaultUrlInvalidHost", "non-vault host")
	refused(kek(url_of("dbx-key-2048", "not-a-version")), "SsemUserErrorInvalidKeyVaultUrl", "malformed version")
	refused(kek("https://%s/secrets/x" % host), "SsemUserErrorInvalidKeyVaultUrl", "path not /keys/")
	refused(kek(good, vid=None), "SsemUserErrorKeyVaultDetailsNotFound", "without kekVaultResourceID")
	refused(kek(good, vid=vault["id"] + "x"), "SsemUserErrorKeyVaultDetailsNotFound", "unknown vault id")
	refused(kek(good, vid=weak["id"]), "SsemUserErrorKeyVaultDetailsNotFound", "vault id naming another vault than the URL")
	refused(kek(url_of("dbx-key-2048", h=weak["name"] + ".vault.azure.net"), vid=weak["id"]),
		"SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled", "vault without purge protection")
	refused(kek(url_of("dbx-key-none")), "SsemUserErrorKeyDetailsNotFound", "unknown key")
	refused(kek(url_of("dbx-key-2048", "0" * 32)), "SsemUserErrorKeyDetailsNotFound", "unknown key version")
	refused(kek(url_of("dbx-key-disabled")), "SsemUserErrorEncryptionKeyDisabled", "disabled key")
	st, added = emu.admin_status("POST", "/admin/vaults/%s/keys" % vault["name"],
			      {"name": "dbx-key-old", "kty": "RSA", "key_size": 2048, "exp": int(time.time()) - 60})
	check(st == 200 and len(added["version"]) == 32 and added["kid"].endswith(added["version"]),
	      "admin: add a key version -> its version", repr(added))
	refused(kek(url_of("dbx-key-old", added["version"])), "SsemUserErrorEncryptionKeyExpired", "expired key")
	refused(kek(url_of("dbx-key-ec")), "SsemUserErrorEncryptionKeyTypeNotSupported", "EC key")
	emu.admin_status("POST", "/admin/vaults/%s/keys" % vault["name"], {"name": "dbx-key-1024", "key_size": 1024})
	refused(kek(url_of("dbx-key-1024")), "SsemUserErrorEncryptionKeyTypeNotSupported", "RSA 1024 key")
	ua = {"type": "UserAssigned", "userAssigned": {"resourceId": uai["id"]}}
	refused(kek(good, identityProperties=ua), "SsemUserErrorUserAssignedIdentityAbsent",
		"UserAssigned key identity not on the job")
	st, extra = emu.admin_status("POST", "/admin/identities", {"subscriptionId": sub, "resourceGroup": "rg-keys", "name": "dbx-uai-temp"})
	check(st == 200 and extra["tenantId"] == tenant and extra["principalId"], "admin: add a user-assigned identity", repr(extra))
	check(emu.admin_status("DELETE", "/admin/identities/dbx-uai-temp")[0] == 200, "admin: delete it")
	check(emu.admin_status("DELETE", "/admin/identities/dbx-uai-temp")[0] == 404, "admin: delete again -> 404")
	both = {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {extra["id"]: {}}}
	refused(dict(kek(good, identityProperties={"type": "UserAssigned", "userAssigned": {"resourceId": extra["id"]}}),
		     identity=both), "SsemUserErrorKekUserIdentityNotFound", "deleted user-assigned identity")
	check(emu.admin_status("POST", "/admin/limits", {"user_assigned_identities": 1})[0] == 200, "admin: limit 1")
	two = {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {uai["id"]: {}, extra["id"]: {}}}
	refused({"identity": two}, "SsemUserErrorUserAssignedLimitReached", "two user-assigned identities over a limit of 1")
	emu.admin_status("POST", "/admin/limits", {"user_assigned_identities": 10})
	refused(dict(kek(good), identity={"type": "None"}), "SsemUserErrorSystemAssignedIdentityAbsent",
		"key with identity None")
	emu.admin_status("DELETE", "/admin/vaults/%s/policies/%s" % (vault["name"], principal))
	refused(kek(good), "SsemUserErrorKeyVaultBadRequestException", "access policy revoked")
	emu.admin_status("POST", "/admin/vaults/%s/policies" % vault["name"],
		  {"objectId": principal, "permissions": {"keys": ["Get", "WrapKey"]}})
	refused(kek(good), "SsemUserErrorKeyVaultBadRequestException", "policy without unwrapKey")
	emu.admin_status("POST", "/admin/vaults/%s/policies" % vault["name"],
		  {"objectId": principal, "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}})

	# ---- accepted changes ----
	r = patch(kek(good))
	check(r.status == 202, "valid key -> 202", repr(r))
	r = finish(r)
	j = stored()
	check(r.status == 200 and j["properties"]["details"]["keyEncryptionKey"]["kekUrl"] == good, "job shows the key")
	lm = j["systemData"]["lastModifiedAt"]
	check(len(lm) == 33 and lm[19] == "." and lm.endswith("+00:00") and lm[20:27].isdigit(),
	      "systemData.lastModifiedAt has 7 fractional digits and +00:00", lm)
	r = finish(patch(dict(kek(good, identityProperties=ua),
			      identity={"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {uai["id"]: {}}})))
	j = stored()
	check(r.status == 200 and j["identity"]["principalId"] == principal
	      and j["identity"]["userAssignedIdentities"][uai["id"]] == {"principalId": uai["principalId"], "clientId": uai["clientId"]},
	      "switch to the user-assigned identity keeps the system principal", json.dumps(j["identity"]))

	# ---- generic failure ----
	emu.admin_status("POST", "/admin/fail-next-patch", {"count": 1})
	before = stored()
	r = patch(kek(url_of("dbx-key-3072")))
	check(r.status == 202, "armed failure: PATCH still 202", repr(r))
	r = emu.url(r.header("Location"), headers=auth)
	check(r.status == 500 and r.json()["error"] == {"code": "InternalServerError", "message": "Could not fetch the passkey."},
	      "armed failure: operationResults -> 500 Could not fetch the passkey.", repr(r))
	check(stored() == before, "armed failure: the job is untouched")
	r = finish(patch(kek(url_of("dbx-key-3072"))))
	check(r.status == 200, "the next PATCH succeeds again", repr(r))

	# ---- closed jobs ----
	closed = [j for j in w["jobs"] if j["properties"]["status"] in ("Completed", "Cancelled")][0]
	r = patch(kek(good), closed["id"])
	check(r.status == 409 and r.json()["error"]["code"] == "Conflict", "PATCH of a %s job -> 409" % closed["properties"]["status"], repr(r))

	# ---- DataCopy re-checks ----
	demo = [j for j in w["jobs"] if j["properties"].get("error")][0]
	d_sub, d_rg, d_name = demo["id"].split("/")[2], demo["id"].split("/")[4], demo["name"]
	dpath = "/admin/jobs/%s/%s/%s" % (d_sub, d_rg, d_name)
	dkek = demo["properties"]["details"]["keyEncryptionKey"]
	dkey, dver = dkek["kekUrl"].split("/")[-2:]
	dprincipal = demo["identity"]["principalId"]

	def datacopy(what, code):
		st, res = emu.admin_status("POST", dpath + "/advance", {"status": "DataCopy"})
		j = stored(dpath)
		stage = [s for s in j["properties"]["details"]["jobStages"] if s["stageName"] == "DataCopy"][0]
		if code is None:
			check(st == 200 and j["properties"]["status"] == "DataCopy" and "error" not in j["properties"]
			      and stage["stageStatus"] == "InProgress", "DataCopy with %s: InProgress, no error" % what, json.dumps(res))
		else:
			err = j["properties"].get("error", {})
			check(st == 200 and j["properties"]["status"] == "DataCopy" and err.get("code") == code
			      and err.get("message", "").startswith(SSEM[code]) and err.get("target") == "KeyEncryptionKey"
			      and err.get("details") == [] and err.get("additionalInfo") == []
			      and stage["stageStatus"] == "WaitingForCustomerActionForKek",
			      "DataCopy with %s -> %s, WaitingForCustomerActionForKek" % (what, code), json.dumps(err))

	check(emu.admin_status("POST", "/admin/vaults/%s/keys/%s" % (vault["name"], dkey), {"version": dver, "enabled": True})[0] == 200,
	      "admin: enable the demo order's key version")
	datacopy("the key enabled", None)
	emu.admin_status("POST", "/admin/vaults/%s/keys/%s" % (vault["name"], dkey), {"enabled": False})
	datacopy("the key disabled", "SsemUserErrorEncryptionKeyDisabled")
	emu.admin_status("POST", "/admin/vaults/%s/keys/%s" % (vault["name"], dkey), {"enabled": True, "exp": int(time.time()) - 1})
	datacopy("the key expired", "SsemUserErrorEncryptionKeyExpired")
	emu.admin_status("POST", "/admin/vaults/%s/keys/%s" % (vault["name"], dkey), {"exp": None})
	datacopy("the key renewed", None)
	emu.admin_status("DELETE", "/admin/vaults/%s/policies/%s" % (vault["name"], dprincipal))
	datacopy("the access policy revoked", "SsemUserErrorKeyVaultBadRequestException")
	emu.admin_status("POST", "/admin/vaults/%s/policies" % vault["name"],
		  {"objectId": dprincipal, "permissions": {"keys": ["all"]}})
	datacopy("access granted again ('all')", None)
	emu.admin_status("POST", "/admin/vaults/%s" % vault["name"], {"enablePurgeProtection": False})
	datacopy("purge protection off", "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled")
	emu.admin_status("POST", "/admin/vaults/%s" % vault["name"], {"enablePurgeProtection": True})
	# a PATCH that makes the key usable clears the order's error
	check(stored(dpath)["properties"].get("error") is not None, "the order shows the key error")
	r = finish(patch(dict(kek(dkek["kekUrl"]), identity={"type": "SystemAssigned"}), demo["id"]))
	j = stored(dpath)
	check(r.status == 200 and "error" not in j["properties"]
	      and all(s["stageStatus"] != "WaitingForCustomerActionForKek" for s in j["properties"]["details"]["jobStages"]),
	      "a fixing PATCH clears properties.error and the stage's KEK wait", json.dumps(j["properties"].get("error")))
	st, k = emu.admin_status("DELETE", "/admin/vaults/%s/keys/%s" % (vault["name"], dkey))
	datacopy("the key deleted", "SsemUserErrorKeyDetailsNotFound")
	check(emu.admin_status("DELETE", "/admin/vaults/%s/keys/%s" % (vault["name"], dkey))[0] == 404, "admin: delete a missing key -> 404")
	# user-assigned identity: deleted, then absent from the job
	uai_job = dict(kek(good, identityProperties=ua),
		       identity={"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {uai["id"]: {}}})
	check(finish(patch(uai_job, demo["id"])).status == 200, "demo order switches to the user-assigned identity")
	datacopy("the user-assigned identity", None)
	st, _ = emu.admin_status("DELETE", "/admin/identities/" + uai["name"])
	datacopy("the user-assigned identity deleted", "SsemUserErrorKekUserIdentityNotFound")
	st, back = emu.admin_status("POST", "/admin/identities", {k: uai[k] for k in ("id", "principalId", "clientId", "tenantId", "location")})
	check(st == 200 and back["principalId"] == uai["principalId"], "admin: re-create the identity")
	r = finish(patch({"identity": {"type": "SystemAssigned"}}, demo["id"]))
	check(r.status == 200 and "userAssignedIdentities" not in stored(dpath)["identity"],
	      "identity-only PATCH dropping the user-assigned identity is accepted")
	datacopy("the user-assigned identity gone from the order", "SsemUserErrorUserAssignedIdentityAbsent")
	check(finish(patch(kek(good), demo["id"])).status == 200, "back to the system identity for the key")
	r = finish(patch(dict(kek(good), identity={"type": "None"}), demo["id"]))
	check(r.status == 400, "key through a missing system identity is refused", repr(r))
	r = finish(patch({"identity": {"type": "None"}}, demo["id"]))
	j = stored(dpath)
	check(r.status == 200 and j["identity"] == {"type": "None"}, "identity None drops principalId and tenantId", json.dumps(j["identity"]))
	datacopy("no system identity", "SsemUserErrorSystemAssignedIdentityAbsent")

	# ---- tenant move and the documented recovery ----
	t2 = "22222222-2222-4222-8222-222222222222"
	r = patch(dict(kek(good), identity={"type": "SystemAssigned"}), demo["id"])
	check(r.status == 400 and r.json()["error"]["code"] == "SsemUserErrorKeyVaultBadRequestException",
	      "a new system identity and the key in one PATCH: the new principal has no access yet", repr(r))
	check(finish(patch({"identity": {"type": "SystemAssigned"}}, demo["id"])).status == 200, "identity SystemAssigned alone")
	p1 = stored(dpath)["identity"]["principalId"]
	emu.admin_status("POST", "/admin/vaults/%s/policies" % vault["name"], {"objectId": p1, "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}})
	datacopy("a fresh system identity with access", None)
	check(emu.admin_status("POST", "/admin/subscriptions/%s/tenant" % sub, {"tenantId": t2})[0] == 200, "admin: move the subscription to another tenant")
	r = emu.https(ARM, "GET", "/subscriptions/%s?api-version=2022-12-01" % sub, auth)
	check(r.status == 200 and r.json()["tenantId"] == t2, "the moved subscription reports its new tenant; the admin's token still works", repr(r))
	datacopy("the subscription moved", "SsemUserErrorCrossTenantIdentityAccessForbidden")
	refused(kek(good), "SsemUserErrorCrossTenantIdentityAccessForbidden", "key after a tenant move", demo["id"], dpath)
	check(finish(patch({"identity": {"type": "None"}}, demo["id"])).status == 200, "recovery: identity None")
	check(finish(patch({"identity": {"type": "SystemAssigned"}}, demo["id"])).status == 200, "recovery: identity SystemAssigned")
	ident = stored(dpath)["identity"]
	check(ident["principalId"] not in (p1, dprincipal) and ident["tenantId"] == t2,
	      "recovery: a new principal in the subscription's current tenant", json.dumps(ident))
	datacopy("the new identity without access", "SsemUserErrorKeyVaultBadRequestException")
	emu.admin_status("POST", "/admin/vaults/%s/policies" % vault["name"], {"objectId": ident["principalId"], "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}})
	datacopy("the new identity granted", None)

	# ---- vault deletion, admin 404s ----
	check(emu.admin_status("DELETE", "/admin/vaults/" + vault["name"])[0] == 200, "admin: delete the vault")
	datacopy("the vault deleted", "SsemUserErrorKeyVaultDetailsNotFound")
	check(emu.admin_status("POST", "/admin/vaults/" + vault["name"], {"enableSoftDelete": True})[0] == 404, "admin: unknown vault -> 404")
	check(emu.admin_status("POST", "/admin/vaults/%s/keys/nope" % weak["name"], {"enabled": False})[0] == 404, "admin: unknown key -> 404")
	check(emu.admin_status("POST", dpath + "/advance", {"status": "Nowhere"})[0] == 400, "admin: advance to an unknown stage -> 400")
	check(emu.admin_status("POST", "/admin/jobs/%s/%s/nope/advance" % (d_sub, d_rg), {"status": "DataCopy"})[0] == 404, "admin: advance an unknown job -> 404")


def hostile_faults(emu):
	"""The fault rules of the fault-matrix: Retry-After in ms and as a date,
	replaced bodies of any bytes and size, a body that stalls, a request
	run and then dropped, rewritten nextLinks, a never-ending operation and
	extra answer headers on a real answer."""
	w = emu.world
	sub = w["subscriptions"][0]["subscriptionId"]
	V = "2025-07-01"
	auth = {"Authorization": "Bearer " + emu.token()}
	lpath = "/subscriptions/%s/providers/Microsoft.DataBox/jobs" % sub
	open_jobs = [j for j in w["jobs"] if j["id"].split("/")[2] == sub and "error" not in j["properties"]
		     and j["properties"]["status"] in ("DeviceOrdered", "DevicePrepared", "Dispatched", "Delivered", "AtAzureDC")]
	job = open_jobs[-1]
	_, _, _, _, rg, _, _, _, name = job["id"].split("/")
	jpath = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s" % (sub, rg, name)
	apath = "/admin/jobs/%s/%s/%s" % (sub, rg, name)

	def rule(**r):
		st, d = emu.admin_status("POST", "/admin/faults", r)
		check(st == 200, "add rule %s" % sorted(r), repr(d))
		return d["id"]

	def get(path=lpath + "?api-version=" + V):
		return emu.https(ARM, "GET", path, auth, timeout=30)

	rule(service="arm", method="GET", path_prefix=lpath, status=429, retry_after_ms=250, count=1)
	r = get()
	check(r.status == 429 and r.header("retry-after-ms") == "250" and r.header("x-ms-retry-after-ms") == "250"
	      and r.header("Retry-After") is None, "429 with retry-after-ms", repr(r.headers))
	rule(service="arm", method="GET", path_prefix=lpath, status=503, retry_after_date_s=3, count=1)
	r = get()
	when = email.utils.parsedate_to_datetime(r.header("Retry-After") or "Thu, 01 Jan 1970 00:00:00 GMT")
	ahead = when.timestamp() - time.time()
	check(r.status == 503 and 1 <= ahead <= 4, "503 with Retry-After as an HTTP date 3 s ahead",
	      "%r %.1f" % (r.header("Retry-After"), ahead))

	raw = b'{"value": [{"name": "\xff\xfe\xc3"}], "name": "a", "name": "b"}'
	rule(service="arm", method="GET", path_prefix=lpath, status=200,
	     body_b64=base64.b64encode(raw).decode(), count=1)
	r = get()
	check(r.status == 200 and r.body == raw, "status 200 + body_b64: the exact bytes (non-UTF-8, duplicate keys)", repr(r.body[:80]))
	big = '{"value": [], "pad": "%s"}' % ("x" * (17 << 20))
	rule(service="arm", method="GET", path_prefix=lpath, status=200, body=big, count=1)
	r = get()
	check(r.status == 200 and len(r.body) == len(big), "a 17 MiB body", str(len(r.body)))
	deep = "[" * 10000 + "]" * 10000
	rule(service="arm", method="GET", path_prefix=lpath, status=200, body=deep, count=1)
	check(get().body == deep.encode(), "a body nested 10,000 deep")

	rule(service="arm", method="GET", path_prefix=lpath, stall_ms=1500, count=1)
	conn = emutest._Conn(ARM, emu.port, emu.ctx, 30)
	try:
		t0 = time.monotonic()
		conn.request("GET", lpath + "?api-version=" + V, headers=auth)
		resp = conn.getresponse()
		t_head = time.monotonic() - t0
		body = resp.read()
		t_body = time.monotonic() - t0
	finally:
		conn.close()
	check(resp.status == 200 and t_head < 1.0 and t_body >= 1.4 and json.loads(body)["value"],
	      "stall_ms: headers at once, the body stalls half-way, then ends whole",
	      "%.2f %.2f" % (t_head, t_body))

	# a PATCH run, then its connection closed: the change is there, nobody heard
	kek = {"properties": {"details": {"keyEncryptionKey": {"kekType": "MicrosoftManaged"}}}}
	rule(service="arm", method="PATCH", path_prefix=jpath, drop_after=True, count=1)
	try:
		emu.https(ARM, "PATCH", jpath + "?api-version=" + V, auth, kek)
		lost = False
	except (http.client.RemoteDisconnected, ConnectionError, OSError):
		lost = True
	stored = emu.admin_status("GET", apath)[1]
	check(lost and stored["properties"]["details"]["keyEncryptionKey"]["kekType"] == "MicrosoftManaged",
	      "drop_after: the PATCH applied, its answer lost")
	polls = [x for x in emu.requests() if x["method"] == "PATCH"][-1]
	check(polls["status"] == 0, "drop_after is logged as dropped (status 0)", repr(polls))

	# Location off-host on a real 202, and a never-ending operation
	rule(service="arm", method="PATCH", path_prefix=jpath, count=1,
	     headers={"Location": "https://attacker.example.net/op"})
	r = emu.https(ARM, "PATCH", jpath + "?api-version=" + V, auth, kek)
	check(r.status == 202 and r.header("Location") == "https://attacker.example.net/op",
	      "headers: a real 202 with a foreign Location", repr(r.headers))
	r = emu.https(ARM, "PATCH", jpath + "?api-version=" + V, auth, kek)
	loc = r.header("Location")
	oppath = "/subscriptions/%s/providers/Microsoft.DataBox/locations/" % sub
	rule(service="arm", method="GET", path_prefix=oppath, status=202, retry_after="1")
	for i in range(3):
		r = emu.url(loc, headers=auth)
		check(r.status == 202 and r.header("Location") == loc and r.header("Retry-After") == "1",
		      "status 202 on operationResults: never ends (poll %d)" % (i + 1), repr(r.headers))
	emu.admin_status("DELETE", "/admin/faults")

	# nextLink rewritten on every page
	for how, want in (("loop", "https://management.azure.com" + lpath),
			  ("foreign", "https://attacker.example.net" + lpath),
			  ("http", "http://management.azure.com" + lpath)):
		fid = rule(service="arm", method="GET", path_prefix=lpath, next_link=how)
		d = get().json()
		check(d["nextLink"].startswith(want), "next_link %s" % how, d["nextLink"])
		if how == "loop":
			d2 = emu.url(d["nextLink"], headers=auth).json()
			check(d2["nextLink"] == d["nextLink"] and d2["value"] == d["value"],
			      "next_link loop: the same page again and again")
		emu.admin_status("DELETE", "/admin/faults/%d" % fid)
	check(emu.admin_status("POST", "/admin/faults", {"next_link": "sideways"})[0] == 400,
	      "next_link: unknown kind -> 400")
	check(emu.admin_status("POST", "/admin/faults", {"body_b64": "!!"})[0] == 400,
	      "body_b64: not base64 -> 400")


def restart(binary, gen_world):
	"""--persist: killed (SIGKILL) and started again, the emulator keeps its
	ports, its CA, the orders as changed, pending operations and tokens."""
	with Emulator(binary, gen_world=gen_world, gen_args=["--orders", "6", "--seed", "9"],
		      persist=True) as emu:
		V = "2025-07-01"
		tok = emu.token()
		auth = {"Authorization": "Bearer " + tok}
		job = emu.world["jobs"][0]
		_, _, sub, _, rg, _, _, _, name = job["id"].split("/")
		jpath = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s" % (sub, rg, name)
		ports = (emu.https_port, emu.admin_port, emu.imds_port)
		with open(emu.cafile) as f:
			ca = f.read()
		r = emu.https(ARM, "PATCH", jpath + "?api-version=" + V, auth, {"tags": {"restart": "before"}})
		check(r.status == 202, "persist: PATCH accepted", repr(r))
		loc = r.header("Location")
		emu.fault(service="arm", method="GET", path_prefix="/nowhere", status=500)
		emu.restart(kill=True)
		with open(emu.cafile) as f:
			check(f.read() == ca, "restart: the same CA")
		check((emu.https_port, emu.admin_port, emu.imds_port) == ports, "restart: the same ports", repr(ports))
		r = emu.https(ARM, "GET", jpath + "?api-version=" + V, auth)
		check(r.status == 200 and r.json().get("tags", {}).get("restart") == "before",
		      "restart: the old token works and the order keeps its change", repr(r))
		r = emu.url(loc, headers=auth)
		check(r.status == 202, "restart: the pending operation still polls", repr(r))
		check(emu.admin("GET", "/admin/faults") == [], "restart: fault rules are not kept")
		emu.restart()
		check(emu.https(ARM, "GET", jpath + "?api-version=" + V, auth).status == 200,
		      "restart after SIGTERM too")


def main():
	p = argparse.ArgumentParser()
	p.add_argument("--emulator", required=True)
	p.add_argument("--gen-world", required=True)
	a = p.parse_args()
	signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("smoke test took > 55 s")))
	signal.alarm(55)
	with Emulator(a.emulator, gen_world=a.gen_world,
		      gen_args=["--demo", "--orders", "45", "--page-size", "10", "--seed", "7"]) as emu:
		run(emu)
		hostile_faults(emu)
		entra_and_imds(emu)
		cmk_rules(emu)
		code = emu.proc
	code.wait(5)
	check(code.returncode == 0, "emulator exits 0 on SIGTERM")
	restart(a.emulator, a.gen_world)
	print("emulator_smoke: %d checks passed" % check.count)


if __name__ == "__main__":
	main()
