#!/usr/bin/python3
"""sdk_python.py: the official Azure SDK for Python, unchanged, against databox-emulator.

Debian's python3-azure (azure.identity.ClientSecretCredential,
azure.mgmt.databox.DataBoxManagementClient, azure.keyvault.keys.KeyClient)
must reach the real host names on port 443. The test does that honestly:
it re-runs itself inside new network and mount namespaces (unshare), brings
up loopback, bind-mounts a hosts file that maps management.azure.com,
login.microsoftonline.com and the vaults' hosts to 127.0.0.1, runs the
emulator on 127.0.0.1:443 and trusts its CA through REQUESTS_CA_BUNDLE.
It lists jobs by subscription and by resource group across pages, gets
jobs with expand="details", reads, lists (one per page) and creates keys,
lists user-assigned identities (azure.mgmt.msi) and vaults
(azure.mgmt.keyvault), and compares everything with the world; updates jobs with begin_update (customer-managed key, then a
user-assigned identity); and signs in with ClientSecretCredential,
CertificateCredential (a certificate made with openssl, registered in the
world) and ManagedIdentityCredential (IMDS on 169.254.169.254:80, given to
lo in the namespace; and the App Service endpoint), each listing jobs. Needs root (CAP_SYS_ADMIN for unshare). Bounded to 55 s; the
namespace, and with it the emulator, disappear when the test ends.
"""
import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "emulator"))
import emutest  # noqa: E402
from emutest import Emulator  # noqa: E402

IMDS_ADDR = "169.254.169.254"
check = emutest.Checks()


def outer(a):
	"""Re-run this script inside fresh net+mount namespaces."""
	return emutest.in_namespaces(__file__, ["--emulator", a.emulator, "--gen-world", a.gen_world],
				     "conformance_python_sdk", 55)


def setup_namespace(world_hosts):
	# the Azure VM metadata address, where ManagedIdentityCredential looks
	return emutest.namespace_hosts(world_hosts, [IMDS_ADDR + "/32"])


def n_bits(s):
	return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big").bit_length()


def ids_equal(a, b):
	return a.lower() == b.lower()


def compare_job(sdk_job, world_job, expanded):
	"""Compare an SDK JobResource (2020-11-01 models) with the world's JSON."""
	wp = world_job["properties"]
	wd = wp["details"]
	name = world_job["name"]
	check(sdk_job.name == name and ids_equal(sdk_job.id, world_job["id"])
	      and sdk_job.location == world_job["location"] and sdk_job.type == "Microsoft.DataBox/jobs",
	      "%s: name, id, location, type" % name)
	check(sdk_job.sku.name == world_job["sku"]["name"] and sdk_job.status == wp["status"]
	      and sdk_job.transfer_type == wp["transferType"], "%s: sku, status, transferType" % name)
	check(sdk_job.identity.type == world_job["identity"]["type"], "%s: identity type" % name)
	check(sdk_job.details is not None and sdk_job.details.job_details_type == wd["jobDetailsType"],
	      "%s: details.jobDetailsType %s" % (name, wd["jobDetailsType"]))
	kek = wd.get("keyEncryptionKey")
	sk = sdk_job.details.key_encryption_key
	if kek is None:
		check(sk is None, "%s: no keyEncryptionKey" % name)
	else:
		check(sk.kek_type == kek["kekType"] and sk.kek_url == kek.get("kekUrl")
		      and sk.kek_vault_resource_id == kek.get("kekVaultResourceID"),
		      "%s: keyEncryptionKey %s" % (name, kek["kekType"]))
	if expanded:
		stages = [(s.stage_name, s.stage_status) for s in sdk_job.details.job_stages]
		check(stages == [(s["stageName"], s["stageStatus"]) for s in wd["jobStages"]],
		      "%s: %d jobStages" % (name, len(stages)))
	if "error" in wp:
		check(sdk_job.error is not None and sdk_job.error.code == wp["error"]["code"],
		      "%s: properties.error %s" % (name, wp["error"]["code"]))


def inside(a):
	signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
	signal.alarm(50)
	gen = ["--demo", "--orders", "30", "--page-size", "5", "--seed", "11"]
	world = emutest.gen_world(a.gen_world, gen)
	vault_hosts = [v["properties"]["vaultUri"].split("/")[2] for v in world["vaults"]]
	hosts = setup_namespace(["management.azure.com", "login.microsoftonline.com"] + vault_hosts)
	certdir = tempfile.mkdtemp(prefix="dbxemu-sdkcert-")
	try:
		# the first client also has a certificate (made here with openssl)
		crt, key = emutest.make_cert(certdir, "cert", cn="databoxfs-conformance")
		with open(crt) as f:
			world["clients"][0]["certificate_pem"] = f.read()
		both = os.path.join(certdir, "both.pem")
		with open(both, "w") as out, open(key) as k, open(crt) as c:
			out.write(k.read() + c.read())
		# the first vault lets the first client create keys (KeyClient.create_rsa_key)
		for pol in world["vaults"][0]["properties"]["accessPolicies"]:
			if pol["objectId"] == world["clients"][0]["object_id"]:
				pol["permissions"]["keys"].append("create")
		with Emulator(a.emulator, world=world, port=443,
			      extra_args=["--imds-port", "80", "--imds-bind", IMDS_ADDR]) as emu:
			check(emu.port == 443 and emu.imds_port == 80,
			      "emulator listens on 127.0.0.1:443 and IMDS on %s:80 in the namespace" % IMDS_ADDR)
			run_sdk(emu, world)
			credentials(emu, world, both)
			st, log = emu.admin_status("GET", "/admin/requests")
			print("\nrequests the SDKs made (method host path?query -> status):")
			for e in log:
				print("  %s %s%s%s -> %s  [%s]" % (e["method"], e["host"], e["path"],
								  "?" + e["query"] if e["query"] else "",
								  e["status"], (e["user_agent"] or "")[:60]))
			st, c = emu.admin_status("GET", "/admin/counters")
			check(c["by_service"]["entra"] >= 1 and c["by_service"]["arm"] >= 1
			      and c["by_service"]["keyvault"] >= 1, "the SDKs went through the emulator")
	finally:
		shutil.rmtree(certdir, ignore_errors=True)
		subprocess.run(["umount", "/etc/hosts"])
		os.unlink(hosts)
	print("conformance_python_sdk: %d checks passed" % check.count)
	return 0


CLOSED = ("Completed", "CompletedWithErrors", "CompletedWithWarnings", "Cancelled", "Aborted")


def patch_cmk(emu, client, world, wjobs):
	"""jobs.begin_update(): the SDK's own LRO poller must follow our Location dance.

	(a) enable a customer-managed key through the system-assigned identity,
	(b) switch the key's identity to a user-assigned one. The 2020-11-01
	models (the SDK's default) already have IdentityProperties and
	UserAssignedProperties, so the default module is used unchanged.
	"""
	from azure.mgmt.databox import models

	name = sorted(n for n, j in wjobs.items()
		      if j["properties"]["details"].get("keyEncryptionKey", {}).get("kekType") == "MicrosoftManaged"
		      and j["properties"]["status"] not in CLOSED)[0]
	rg = wjobs[name]["id"].split("/")[4]
	sub = wjobs[name]["id"].split("/")[2]
	apath = "/admin/jobs/%s/%s/%s" % (sub, rg, name)
	vault = [v for v in world["vaults"] if v["id"].split("/")[2] == sub][0]
	uai = [i for i in world["identities"] if i["id"].split("/")[2] == sub][0]
	key = vault["keys"][0]
	url = "%skeys/%s/%s" % (vault["properties"]["vaultUri"], key["name"], key["versions"][-1]["version"])

	# (a) a system identity first, the vault trusts it, then the key
	job = client.jobs.begin_update(rg, name, models.JobResourceUpdateParameter(
		identity=models.ResourceIdentity(type="SystemAssigned")), polling_interval=0).result(timeout=20)
	principal = job.identity.principal_id
	check(job.identity.type == "SystemAssigned" and principal and job.identity.tenant_id == sub_tenant(world, sub),
	      "%s: begin_update(identity=SystemAssigned) gives a principal" % name)
	st, _ = emu.admin_status("POST", "/admin/vaults/%s/policies" % vault["name"],
			  {"objectId": principal, "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}})
	check(st == 200, "admin: the vault grants the new principal get/wrapKey/unwrapKey")
	params = models.JobResourceUpdateParameter(details=models.UpdateJobDetails(
		key_encryption_key=models.KeyEncryptionKey(
			kek_type="CustomerManaged", kek_url=url, kek_vault_resource_id=vault["id"])))
	poller = client.jobs.begin_update(rg, name, params, polling_interval=0)
	job = poller.result(timeout=20)
	check(poller.status() == "Succeeded", "jobs.begin_update(%s, CMK): LRO via Location finished" % name)
	kek = job.details.key_encryption_key if job.details else None
	check(job.name == name and kek is not None and kek.kek_type == "CustomerManaged" and kek.kek_url == url
	      and kek.kek_vault_resource_id == vault["id"],
	      "%s: poller result carries the new customer-managed key" % name)
	st, stored = emu.admin_status("GET", apath)
	check(stored["properties"]["details"]["keyEncryptionKey"] == {
		"kekType": "CustomerManaged", "kekUrl": url, "kekVaultResourceID": vault["id"]}
	    and stored["identity"]["principalId"] == principal,
	    "%s: the stored job has exactly the key the SDK sent" % name, json.dumps(stored["identity"]))

	# (b) the key's identity becomes a user-assigned identity
	params = models.JobResourceUpdateParameter(
		identity=models.ResourceIdentity(
			type="SystemAssigned,UserAssigned",
			user_assigned_identities={uai["id"]: models.UserAssignedIdentity()}),
		details=models.UpdateJobDetails(key_encryption_key=models.KeyEncryptionKey(
			kek_type="CustomerManaged", kek_url=url, kek_vault_resource_id=vault["id"],
			identity_properties=models.IdentityProperties(
				type="UserAssigned", user_assigned=models.UserAssignedProperties(resource_id=uai["id"])))))
	poller = client.jobs.begin_update(rg, name, params, polling_interval=0)
	job = poller.result(timeout=20)
	check(poller.status() == "Succeeded", "jobs.begin_update(%s, user-assigned identity) finished" % name)
	kek = job.details.key_encryption_key
	check(kek.identity_properties.type == "UserAssigned"
	      and kek.identity_properties.user_assigned.resource_id == uai["id"],
	      "%s: poller result uses the user-assigned identity for the key" % name)
	check(job.identity.type == "SystemAssigned,UserAssigned" and job.identity.principal_id == principal
	      and job.identity.user_assigned_identities[uai["id"]].principal_id == uai["principalId"]
	      and job.identity.user_assigned_identities[uai["id"]].client_id == uai["clientId"],
	      "%s: identity keeps the system principal and shows the UAI's ids" % name)
	st, stored = emu.admin_status("GET", apath)
	skek = stored["properties"]["details"]["keyEncryptionKey"]
	check(skek["identityProperties"] == {"type": "UserAssigned", "userAssigned": {"resourceId": uai["id"]}}
	      and list(stored["identity"]["userAssignedIdentities"]) == [uai["id"]],
	      "%s: the stored job matches" % name, json.dumps(skek))
	again = client.jobs.get(rg, name, expand="details")
	check(again.details.key_encryption_key.kek_url == url, "%s: a fresh GET agrees" % name)

	# a refused update surfaces as the SDK's HttpResponseError with the Ssem code
	from azure.core.exceptions import HttpResponseError
	bad = models.JobResourceUpdateParameter(details=models.UpdateJobDetails(
		key_encryption_key=models.KeyEncryptionKey(
			kek_type="CustomerManaged", kek_url=url.replace("https://", "http://"),
			kek_vault_resource_id=vault["id"])))
	try:
		client.jobs.begin_update(rg, name, bad, polling_interval=0).result(timeout=20)
		code = None
	except HttpResponseError as e:
		code = e.error.code if e.error else None
	check(code == "SsemUserErrorKeyVaultUrlWithInvalidScheme",
	      "%s: an http:// key URL -> HttpResponseError SsemUserErrorKeyVaultUrlWithInvalidScheme" % name, str(code))


def sub_tenant(world, sub):
	return [s for s in world["subscriptions"] if s["subscriptionId"] == sub][0]["tenantId"]


def run_sdk(emu, world):
	os.environ["REQUESTS_CA_BUNDLE"] = emu.cafile
	for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "AZURE_AUTHORITY_HOST"):
		os.environ.pop(k, None)
	from azure.identity import ClientSecretCredential
	from azure.mgmt.databox import DataBoxManagementClient
	from azure.keyvault.keys import KeyClient

	c = world["clients"][0]
	cred = ClientSecretCredential(c["tenant_id"], c["client_id"], c["client_secret"])
	page = world["page_size"]
	for s in world["subscriptions"]:
		sub = s["subscriptionId"]
		client = DataBoxManagementClient(cred, sub)
		wjobs = {j["name"]: j for j in world["jobs"] if j["id"].split("/")[2] == sub}
		listed = list(client.jobs.list())
		check(len(wjobs) > page and sorted(j.name for j in listed) == sorted(wjobs),
		      "jobs.list() in %s: %d jobs over %d pages of %d" % (sub, len(listed), -(-len(listed) // page), page))
		for j in listed:
			compare_job(j, wjobs[j.name], expanded=True)
		rgs = sorted({j["id"].split("/")[4] for j in wjobs.values()})
		for rg in rgs:
			want = sorted(n for n, j in wjobs.items() if j["id"].split("/")[4] == rg)
			got = sorted(j.name for j in client.jobs.list_by_resource_group(rg))
			check(got == want, "jobs.list_by_resource_group(%s): %d jobs" % (rg, len(got)))
		for name in sorted(wjobs)[:4] + [n for n, j in wjobs.items() if "error" in j["properties"]]:
			rg = wjobs[name]["id"].split("/")[4]
			compare_job(client.jobs.get(rg, name, expand="details"), wjobs[name], expanded=True)
			j = client.jobs.get(rg, name)
			check(j.details is not None and not j.details.job_stages,
			      "%s: get() without expand has details but no jobStages" % name)
		if sub == world["subscriptions"][0]["subscriptionId"]:
			patch_cmk(emu, client, world, wjobs)
		client.close()

	v = world["vaults"][0]
	kc = KeyClient(v["properties"]["vaultUri"], cred, api_version="7.3")
	for key in v["keys"]:
		got = kc.get_key(key["name"])
		latest = key["versions"][-1]
		check(got.properties.version == latest["version"] and got.key_type == latest["kty"]
		      and got.properties.enabled == latest["enabled"]
		      and got.properties.recovery_level == "Recoverable",
		      "KeyClient.get_key(%s): version, kty, enabled, recovery level" % key["name"])
		if latest["kty"].startswith("RSA"):
			bits = int.from_bytes(got.key.n, "big").bit_length()
			check(bits == latest["key_size"], "%s: %d-bit modulus" % (key["name"], bits))
	versions = [p.version for p in kc.list_properties_of_key_versions(v["keys"][0]["name"])]
	check(sorted(versions) == sorted(x["version"] for x in v["keys"][0]["versions"]),
	      "KeyClient.list_properties_of_key_versions")
	names = [p.name for p in kc.list_properties_of_keys(max_page_size=1)]
	check(sorted(names) == sorted(k["name"] for k in v["keys"] if k["versions"]),
	      "KeyClient.list_properties_of_keys, one key per page")
	made = kc.create_rsa_key("sdk-made", size=3072, key_operations=["wrapKey", "unwrapKey"])
	check(made.key_type == "RSA" and int.from_bytes(made.key.n, "big").bit_length() == 3072
	      and sorted(made.key_operations) == ["unwrapKey", "wrapKey"],
	      "KeyClient.create_rsa_key: RSA 3072 with wrapKey and unwrapKey")
	again = kc.create_rsa_key("sdk-made", size=2048)
	versions = [p.version for p in kc.list_properties_of_key_versions("sdk-made", max_page_size=1)]
	check(sorted(versions) == sorted([made.properties.version, again.properties.version]),
	      "KeyClient.create_rsa_key of an existing name makes a new version")
	kc.close()
	identities_and_vaults(cred, world)
	cred.close()


def identities_and_vaults(cred, world):
	"""The catalogue's ARM lists, as azure.mgmt.msi and azure.mgmt.keyvault read them."""
	from azure.mgmt.msi import ManagedServiceIdentityClient
	from azure.mgmt.keyvault import KeyVaultManagementClient

	for s in world["subscriptions"]:
		sub = s["subscriptionId"]
		mine = [u for u in world["identities"] if u["id"].split("/")[2] == sub]
		want = sorted((u["id"], u["principalId"], u["clientId"]) for u in mine)
		msi = ManagedServiceIdentityClient(cred, sub)
		got = sorted((u.id, u.principal_id, u.client_id)
			     for u in msi.user_assigned_identities.list_by_subscription())
		check(got == want, "user_assigned_identities.list_by_subscription(%s)" % sub)
		for rg in sorted({u["id"].split("/")[4] for u in mine}):
			got = sorted(u.name for u in msi.user_assigned_identities.list_by_resource_group(rg))
			check(got == sorted(u["name"] for u in mine if u["id"].split("/")[4] == rg),
			      "user_assigned_identities.list_by_resource_group(%s)" % rg)
		msi.close()
		kvm = KeyVaultManagementClient(cred, sub)
		got = sorted((v.name, bool(v.properties.enable_purge_protection))
			     for v in kvm.vaults.list_by_subscription())
		want = sorted((v["name"], bool(v["properties"].get("enablePurgeProtection")))
			      for v in world["vaults"] if v["id"].split("/")[2] == sub)
		check(got == want, "vaults.list_by_subscription(%s): names, purge protection" % sub)
		kvm.close()


def credentials(emu, world, cert_path):
	"""azure.identity's secret, certificate and managed identity credentials, unchanged."""
	from azure.identity import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
	from azure.mgmt.databox import DataBoxManagementClient

	for k in ("AZURE_CLIENT_ID", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET",
		  "IMDS_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST", "IDENTITY_SERVER_THUMBPRINT"):
		os.environ.pop(k, None)
	c = world["clients"][0]
	sub = world["subscriptions"][0]["subscriptionId"]
	want = sorted(j["name"] for j in world["jobs"] if j["id"].split("/")[2] == sub)
	emu.admin_status("POST", "/admin/requests/reset")

	def lists_jobs(cred, what, kind):
		before = emu.admin_status("GET", "/admin/tokens/stats")[1]["by_credential"].get(kind, 0)
		client = DataBoxManagementClient(cred, sub)
		got = sorted(j.name for j in client.jobs.list())
		client.close()
		after = emu.admin_status("GET", "/admin/tokens/stats")[1]["by_credential"].get(kind, 0)
		check(got == want and after > before, "%s obtains a token (%s) and lists %d jobs" % (what, kind, len(got)))
		cred.close()

	lists_jobs(ClientSecretCredential(c["tenant_id"], c["client_id"], c["client_secret"]),
		   "ClientSecretCredential", "client_secret")
	lists_jobs(CertificateCredential(c["tenant_id"], c["client_id"], certificate_path=cert_path),
		   "CertificateCredential", "client_assertion_certificate")
	lists_jobs(ManagedIdentityCredential(), "ManagedIdentityCredential (IMDS at %s)" % IMDS_ADDR, "imds")
	os.environ["IDENTITY_ENDPOINT"] = "http://%s/msi/token" % IMDS_ADDR
	os.environ["IDENTITY_HEADER"] = world["identity_header"]
	try:
		lists_jobs(ManagedIdentityCredential(), "ManagedIdentityCredential (App Service)", "app_service")
	finally:
		del os.environ["IDENTITY_ENDPOINT"], os.environ["IDENTITY_HEADER"]
	st, log = emu.admin_status("GET", "/admin/requests")
	imds = [e for e in log if e["service"] == "imds" and e["status"] == 200]
	check(imds and all(e.get("scope") == "https://management.azure.com" for e in imds),
	      "IMDS requests asked for the ARM resource", json.dumps(imds[:1]))
	assertions = [e for e in log if e["service"] == "entra" and e.get("grant_type") == "client_credentials"]
	check(assertions and "client_assertion" not in json.dumps(log), "token requests logged without their secrets")


def main():
	p = argparse.ArgumentParser()
	p.add_argument("--emulator", required=True)
	p.add_argument("--gen-world", required=True)
	p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
	a = p.parse_args()
	if os.geteuid() != 0:
		print("conformance_python_sdk: needs root for unshare --net --mount")
		return 77
	return inside(a) if a.inside else outer(a)


if __name__ == "__main__":
	sys.exit(main())
