#!/usr/bin/python3
"""sdk_peer.py: the peer scripts/bench measures databoxfs against.

The script an admin writes with the official Azure SDK for Python
(Debian's python3-azure: azure.identity and azure.mgmt.databox), nothing
tuned: credentials from the AZURE_* environment, plain list / get /
begin_update(...).result() calls. It talks to the real host names
(management.azure.com, login.microsoftonline.com), so scripts/bench runs
it inside a network namespace where those names resolve to the emulator,
with REQUESTS_CA_BUNDLE naming the emulator's CA.

  sdk_peer.py snapshot DIR SUB [SUB...]
      every job of the subscriptions (list, with details), one JSON file each
  sdk_peer.py keychange SUB RG NAME KEK_URL VAULT_ID POLL_S
      set a customer-managed key through the system identity and wait for it
  sdk_peer.py fanout THREADS POLL_S KEK_URL VAULT_ID SUB/RG/NAME...
      the same key on many orders, THREADS at a time
"""
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor


def credential():
	from azure.identity import ClientSecretCredential
	return ClientSecretCredential(os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"],
				      os.environ["AZURE_CLIENT_SECRET"])


def client(cred, sub):
	from azure.mgmt.databox import DataBoxManagementClient
	return DataBoxManagementClient(cred, sub)


def snapshot(out_dir, subs):
	cred = credential()
	n = 0
	for sub in subs:
		for job in client(cred, sub).jobs.list():
			rg = job.id.split("/")[4]
			d = os.path.join(out_dir, sub, rg)
			os.makedirs(d, exist_ok=True)
			with open(os.path.join(d, job.name + ".json"), "w") as f:
				json.dump(job.as_dict(), f)
			n += 1
	print(n)


def set_key(c, rg, name, kek_url, vault_id, poll_s):
	from azure.mgmt.databox import models
	params = models.JobResourceUpdateParameter(details=models.UpdateJobDetails(
		key_encryption_key=models.KeyEncryptionKey(
			kek_type="CustomerManaged", kek_url=kek_url, kek_vault_resource_id=vault_id,
			identity_properties=models.IdentityProperties(type="SystemAssigned"))))
	c.jobs.begin_update(rg, name, params, polling_interval=poll_s).result()


def keychange(sub, rg, name, kek_url, vault_id, poll_s):
	set_key(client(credential(), sub), rg, name, kek_url, vault_id, float(poll_s))


def fanout(threads, poll_s, kek_url, vault_id, orders):
	cred = credential()

	def one(path):
		sub, rg, name = path.split("/")
		set_key(client(cred, sub), rg, name, kek_url, vault_id, float(poll_s))

	with ThreadPoolExecutor(int(threads)) as pool:
		list(pool.map(one, orders))


def main(argv):
	if len(argv) < 2:
		print(__doc__, file=sys.stderr)
		return 2
	cmd, args = argv[1], argv[2:]
	if cmd == "snapshot" and len(args) >= 2:
		snapshot(args[0], args[1:])
	elif cmd == "keychange" and len(args) == 6:
		keychange(*args)
	elif cmd == "fanout" and len(args) >= 5:
		fanout(args[0], args[1], args[2], args[3], args[4:])
	else:
		print(__doc__, file=sys.stderr)
		return 2
	return 0


if __name__ == "__main__":
	sys.exit(main(sys.argv))
