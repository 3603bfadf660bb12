#!/usr/bin/python3
"""gen-world.py: write a realistic, deterministic world for databox-emulator.

    gen-world.py --orders N [--subscriptions 2] [--resource-groups 3] [--seed 1]
                 [--page-size 20] [--tenant T --client-id C --client-secret S]
                 [--demo] > world.json

The world has subscriptions with stable GUIDs, resource groups spread over
them (plus one "rg-keys" per subscription that holds the vaults and
user-assigned identities and no orders), N Data Box orders named
order-0001... of SKUs DataBox, DataBoxHeavy and DataBoxDisk in every stage,
with a mix of key encryption: none given, Microsoft managed, customer
managed through the system-assigned identity, customer managed through a
user-assigned identity. Vaults carry RSA 2048 and 3072 keys (the emulator
makes the key material), access policies for the orders' principals and for
the default client. --demo is 2 subscriptions, 3 resource groups and 20
orders, one of which carries SsemUserErrorEncryptionKeyDisabled.
Standard library only; the same arguments always give the same bytes.
"""
import argparse
import base64
import datetime
import json
import random
import sys
import uuid

STAGES = [
	("DeviceOrdered", "Ordered"),
	("DevicePrepared", "Processed"),
	("Dispatched", "Dispatched"),
	("Delivered", "Delivered"),
	("PickedUp", "Picked up"),
	("AtAzureDC", "Received"),
	("DataCopy", "Data copy in progress"),
	("Completed", "Completed"),
]
STATUSES = ["DeviceOrdered", "DevicePrepared", "Dispatched", "Delivered", "PickedUp",
	    "AtAzureDC", "DataCopy", "Completed", "CompletedWithErrors", "Cancelled"]
SKUS = [
	({"name": "DataBox", "displayName": "Data Box", "family": "DataBox", "model": "AzureDataBox120"}, "DataBox"),
	({"name": "DataBoxHeavy", "displayName": "Data Box Heavy", "family": "DataBoxHeavy", "model": "DataBoxHeavy"}, "DataBoxHeavy"),
	({"name": "DataBoxDisk", "displayName": "Data Box Disk", "family": "DataBoxDisk", "model": "DataBoxDisk"}, "DataBoxDisk"),
]
LOCATIONS = ["westus", "westus2", "eastus", "westeurope", "northeurope"]
PEOPLE = [("Avery Quinn", "avery.quinn"), ("Jordan Lee", "jordan.lee"),
	  ("Sam Patel", "sam.patel"), ("Riley Chen", "riley.chen")]
CITIES = [("Redmond", "WA", "98052"), ("Seattle", "WA", "98101"),
	  ("Austin", "TX", "78701"), ("Denver", "CO", "80202")]
DEMO_ERROR = {
	"code": "SsemUserErrorEncryptionKeyDisabled",
	"message": "Could not fetch the passkey as the customer-managed key is disabled.",
	"target": "KeyEncryptionKey",
	"details": [],
	"additionalInfo": [],
}


class World:
	def __init__(self, args):
		self.rng = random.Random(args.seed)
		self.args = args
		self.base = datetime.datetime(2025, 3, 3, 8, 0, 0, tzinfo=datetime.timezone.utc)

	def guid(self):
		return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

	def hexid(self, n=32):
		return "%0*x" % (n, self.rng.getrandbits(4 * n))

	def stamp(self, when):
		frac = self.rng.randrange(10 ** 7)
		return when.strftime("%Y-%m-%dT%H:%M:%S") + ".%07d+00:00" % frac

	def build(self):
		a = self.args
		tenant = a.tenant or self.guid()
		other_tenant = self.guid()
		client = {
			"tenant_id": tenant,
			"client_id": a.client_id or self.guid(),
			"client_secret": a.client_secret or "emu~" + self.hexid(32),
			"object_id": self.guid(),
			"display_name": "databoxfs-tests",
		}
		stranger = {
			"tenant_id": other_tenant,
			"client_id": self.guid(),
			"client_secret": "emu~" + self.hexid(32),
			"object_id": self.guid(),
			"display_name": "other-tenant-app",
		}
		subs = [{"subscriptionId": self.guid(),
			 "displayName": "Demo subscription" if i == 0 else "Demo subscription %d" % (i + 1),
			 "tenantId": tenant, "state": "Enabled"}
			for i in range(a.subscriptions)]
		# resource groups holding orders, round-robin over subscriptions
		order_rgs = [(subs[i % len(subs)]["subscriptionId"], "rg-databox-%d" % (i + 1))
			     for i in range(a.resource_groups)]
		rgs = [{"subscriptionId": s, "name": g} for s, g in order_rgs]
		rgs += [{"subscriptionId": s["subscriptionId"], "name": "rg-keys"} for s in subs]

		vaults, identities, vault_of_sub, uai_of_sub = [], [], {}, {}
		for i, s in enumerate(subs):
			sid = s["subscriptionId"]
			loc = LOCATIONS[i % len(LOCATIONS)]
			name = "dbxemu-kv-%02d-%s" % (i + 1, self.hexid(4))
			keys = [
				{"name": "dbx-key-2048", "tags": {}, "versions": [
					self.version("RSA", 2048, 1700000000 + i * 1000),
					self.version("RSA", 2048, 1710000000 + i * 1000)]},
				{"name": "dbx-key-3072", "tags": {}, "versions": [
					self.version("RSA-HSM" if i % 2 else "RSA", 3072, 1705000000 + i * 1000)]},
			]
			if i == 0:
				keys.append({"name": "dbx-key-ec", "tags": {}, "versions": [
					self.version("EC", 256, 1706000000)]})
				keys.append({"name": "dbx-key-disabled", "tags": {}, "versions": [
					dict(self.version("RSA", 2048, 1707000000), enabled=False)]})
			v = self.vault(sid, tenant, name, loc, keys, purge=True)
			vaults.append(v)
			vault_of_sub[sid] = v
			uai = {
				"id": "/subscriptions/%s/resourceGroups/rg-keys/providers/"
				  "Microsoft.ManagedIdentity/userAssignedIdentities/dbx-uai-%02d" % (sid, i + 1),
				"name": "dbx-uai-%02d" % (i + 1),
				"location": loc,
				"principalId": self.guid(),
				"clientId": self.guid(),
				"tenantId": tenant,
			}
			identities.append(uai)
			uai_of_sub[sid] = uai
			self.grant(v, tenant, uai["principalId"], ["get", "wrapKey", "unwrapKey"])
			self.grant(v, tenant, client["object_id"], ["get", "list"])
		# a vault without purge protection (Data Box rejects it)
		s0 = subs[0]["subscriptionId"]
		weak = self.vault(s0, tenant, "dbxemu-kv-nopurge-%s" % self.hexid(4), LOCATIONS[0],
				  [{"name": "dbx-key-2048", "tags": {}, "versions": [
				  	self.version("RSA", 2048, 1708000000)]}], purge=False)
		self.grant(weak, tenant, client["object_id"], ["get", "list"])
		vaults.append(weak)

		demo_index = 3 if a.demo else -1
		jobs = []
		for n in range(a.orders):
			sid, rg = order_rgs[n % len(order_rgs)]
			jobs.append(self.job(n, sid, rg, tenant, vault_of_sub[sid], uai_of_sub[sid],
					     n == demo_index))

		# drawn last, so earlier values stay what they were before these existed
		workload = self.workload_client(tenant)
		uai0 = identities[0]
		managed = [
			{"client_id": self.guid(), "principal_id": self.guid(), "tenant_id": tenant,
			 "system": True},
			{"client_id": uai0["clientId"], "principal_id": uai0["principalId"],
			 "tenant_id": tenant, "system": False, "msi_res_id": uai0["id"]},
		]

		return {
			"page_size": a.page_size,
			"token_lifetime_s": 3599,
			"tenants": [tenant, other_tenant],
			"clients": [client, stranger, workload],
			"managed_identities": managed,
			"identity_header": "emu-idh-" + self.hexid(32),
			"subscriptions": subs,
			"resource_groups": rgs,
			"jobs": jobs,
			"vaults": vaults,
			"identities": identities,
		}

	def workload_client(self, tenant):
		"""An app that signs in with a federated (Kubernetes service account) token."""
		def b64(obj):
			raw = json.dumps(obj, separators=(",", ":")).encode()
			return base64.urlsafe_b64encode(raw).decode().rstrip("=")
		subject = "system:serviceaccount:default:databoxfs"
		token = "%s.%s.%s" % (
			b64({"alg": "RS256", "kid": self.hexid(16)}),
			b64({"aud": ["api://AzureADTokenExchange"], "iss": "https://oidc.emulator.invalid/",
			     "sub": subject, "iat": 1700000000, "nbf": 1700000000, "exp": 4102444800}),
			base64.urlsafe_b64encode(bytes.fromhex(self.hexid(64))).decode().rstrip("="))
		return {
			"tenant_id": tenant,
			"client_id": self.guid(),
			"object_id": self.guid(),
			"display_name": "databoxfs-workload",
			"federated_subjects": [subject],
			"federated_token": token,
		}

	def version(self, kty, size, created):
		return {"version": self.hexid(32), "kty": kty, "key_size": size, "enabled": True,
			"exp": None, "nbf": None, "created": created, "updated": created}

	def vault(self, sid, tenant, name, loc, keys, purge):
		props = {
			"tenantId": tenant,
			"sku": {"family": "A", "name": "standard"},
			"vaultUri": "https://%s.vault.azure.net/" % name,
			"enabledForDeployment": False,
			"enabledForDiskEncryption": False,
			"enabledForTemplateDeployment": False,
			"enableSoftDelete": True,
			"softDeleteRetentionInDays": 90,
			"enableRbacAuthorization": False,
			"accessPolicies": [],
			"provisioningState": "Succeeded",
			"publicNetworkAccess": "Enabled",
		}
		if purge:
			props["enablePurgeProtection"] = True
		return {
			"id": "/subscriptions/%s/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/%s"
			  % (sid, name),
			"name": name,
			"type": "Microsoft.KeyVault/vaults",
			"location": loc,
			"tags": {},
			"properties": props,
			"keys": keys,
		}

	@staticmethod
	def grant(vault, tenant, oid, perms):
		vault["properties"]["accessPolicies"].append(
			{"tenantId": tenant, "objectId": oid, "permissions": {"keys": list(perms)}})

	def stages(self, status, created, kek_wait):
		out = []
		if status == "Cancelled":
			out.append({"stageName": "DeviceOrdered", "displayName": "Ordered",
				    "stageStatus": "Succeeded", "stageTime": self.stamp(created),
				    "jobStageDetails": None, "delayInformation": []})
			out.append({"stageName": "Cancelled", "displayName": "Canceled",
				    "stageStatus": "Succeeded",
				    "stageTime": self.stamp(created + datetime.timedelta(days=1)),
				    "jobStageDetails": None, "delayInformation": []})
			return out
		final = "Completed" if status.startswith("Completed") else status
		cur = [s for s, _ in STAGES].index(final)
		for i, (name, display) in enumerate(STAGES):
			st = {"stageName": name, "displayName": display, "stageStatus": "None",
			      "jobStageDetails": None, "delayInformation": []}
			if name == "Completed" and status != "Completed":
				if status.startswith("Completed"):
					st["stageName"] = status
					st["displayName"] = "Completed with errors" if status == "CompletedWithErrors" \
						else "Completed with warnings"
			if i < cur or (i == cur and final == "Completed"):
				st["stageStatus"] = "Succeeded"
				if status == "CompletedWithErrors" and name in ("DataCopy", "Completed"):
					st["stageStatus"] = "SucceededWithErrors"
				st["stageTime"] = self.stamp(created + datetime.timedelta(days=i, hours=3))
			elif i == cur:
				st["stageStatus"] = "WaitingForCustomerActionForKek" if kek_wait else "InProgress"
				st["stageTime"] = self.stamp(created + datetime.timedelta(days=i, hours=3))
			out.append(st)
		return out

	def job(self, n, sid, rg, tenant, vault, uai, demo_error):
		a = self.args
		name = "order-%04d" % (n + 1)
		# vary the SKU within each resource group too
		sku, details_type = SKUS[(n + n // a.resource_groups) % len(SKUS)]
		status = STATUSES[(n * 7 + n // 10) % len(STATUSES)]
		if demo_error:
			status = "DataCopy"
		created = self.base + datetime.timedelta(hours=n * 3, minutes=(n * 17) % 60,
							 seconds=n % 60)
		modified = created + datetime.timedelta(days=2, minutes=n)
		person, mail = PEOPLE[n % len(PEOPLE)]
		city, state, zipc = CITIES[n % len(CITIES)]
		loc = vault["location"]
		early = status in ("DeviceOrdered", "DevicePrepared")
		terminal = status in ("Completed", "CompletedWithErrors", "Cancelled")
		kind = n % 5  # 0 none given, 1-2 Microsoft managed, 3 CMK system, 4 CMK user
		if demo_error:
			kind = 3
		identity = {"type": "None"}
		kek = None
		if kind in (1, 2):
			kek = {"kekType": "MicrosoftManaged"}
		elif kind in (3, 4):
			principal = self.guid()
			identity = {"type": "SystemAssigned", "principalId": principal, "tenantId": tenant}
			key = "dbx-key-2048" if n % 2 else "dbx-key-3072"
			if demo_error:
				key = "dbx-key-disabled"
				vkeys = [k for k in vault["keys"] if k["name"] == key]
				if not vkeys:  # the disabled key lives in the first vault
					raise SystemExit("gen-world: demo order must be in the first subscription")
			kver = [k for k in vault["keys"] if k["name"] == key][0]["versions"][-1]["version"]
			kek = {
				"kekType": "CustomerManaged",
				"kekUrl": "https://%s.vault.azure.net/keys/%s/%s" % (vault["name"], key, kver),
				"kekVaultResourceID": vault["id"],
			}
			if kind == 4:
				identity["type"] = "SystemAssigned,UserAssigned"
				identity["userAssignedIdentities"] = {
					uai["id"]: {"principalId": uai["principalId"], "clientId": uai["clientId"]}}
				kek["identityProperties"] = {"type": "UserAssigned",
							     "userAssigned": {"resourceId": uai["id"]}}
			else:
				kek["identityProperties"] = {"type": "SystemAssigned"}
				self.grant(vault, tenant, principal, ["get", "wrapKey", "unwrapKey"])

		details = {
			"jobDetailsType": details_type,
			"jobStages": self.stages(status, created, demo_error),
			"contactDetails": {
				"contactName": person,
				"phone": "1425555%04d" % (n % 10000),
				"phoneExtension": "",
				"emailList": ["%s@contoso.com" % mail],
				"notificationPreference": [
					{"stageName": "DevicePrepared", "sendNotification": True},
					{"stageName": "Dispatched", "sendNotification": True},
					{"stageName": "Delivered", "sendNotification": True},
					{"stageName": "PickedUp", "sendNotification": True},
					{"stageName": "AtAzureDC", "sendNotification": True},
					{"stageName": "DataCopy", "sendNotification": True},
				],
			},
			"shippingAddress": {
				"streetAddress1": "%d Main Street" % (100 + n),
				"city": city, "stateOrProvince": state, "country": "US",
				"postalCode": zipc, "companyName": "Contoso", "addressType": "Commercial",
			},
			"deliveryPackage": {"carrierName": "", "trackingId": "", "trackingUrl": ""},
			"returnPackage": {"carrierName": "", "trackingId": "", "trackingUrl": ""},
			"dataImportDetails": [{
				"accountDetails": {
					"dataAccountType": "StorageAccount",
					"storageAccountId": "/subscriptions/%s/resourceGroups/%s/providers/"
										"Microsoft.Storage/storageAccounts/dbxemust%04d" % (sid, rg, n + 1),
				},
				"logCollectionLevel": "Error",
			}],
			"dataExportDetails": [],
			"preferences": {
				"preferredDataCenterRegion": [],
				"transportPreferences": {"preferredShipmentType": "MicrosoftManaged",
							 "isUpdated": False},
				"encryptionPreferences": {"doubleEncryption": "Disabled",
							  "hardwareEncryption": "Disabled"},
				"storageAccountAccessTierPreferences": [],
			},
			"reverseShippingDetails": {},
			"copyLogDetails": [],
			"copyProgress": [],
			"actions": [],
			"expectedDataSizeInTeraBytes": 0,
			"dataCenterCode": "SN6",
		}
		if kek is not None:
			details["keyEncryptionKey"] = kek
		props = {
			"transferType": "ImportToAzure",
			"isCancellable": early,
			"isDeletable": terminal,
			"isShippingAddressEditable": early,
			"reverseShippingDetailsUpdate": "NotAllowed",
			"reverseTransportPreferenceUpdate": "NotAllowed",
			"isPrepareToShipEnabled": False,
			"status": status,
			"delayedStage": "None",
			"startTime": self.stamp(created),
			"details": details,
			"deliveryType": "NonScheduled",
			"deliveryInfo": {"scheduledDateTime": "0001-01-01T00:00:00+00:00"},
			"isCancellableWithoutFee": early,
			"allDevicesLost": False,
		}
		if demo_error:
			props["error"] = dict(DEMO_ERROR)
		return {
			"id": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s"
			  % (sid, rg, name),
			"name": name,
			"type": "Microsoft.DataBox/jobs",
			"location": loc,
			"tags": {},
			"sku": sku,
			"identity": identity,
			"systemData": {
				"createdBy": "%s@contoso.com" % mail,
				"createdByType": "User",
				"createdAt": self.stamp(created),
				"lastModifiedBy": "%s@contoso.com" % mail,
				"lastModifiedByType": "User",
				"lastModifiedAt": self.stamp(modified),
			},
			"properties": props,
		}


def main():
	p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
	p.add_argument("--orders", type=int)
	p.add_argument("--subscriptions", type=int)
	p.add_argument("--resource-groups", type=int)
	p.add_argument("--seed", type=int, default=1)
	p.add_argument("--page-size", type=int, default=20)
	p.add_argument("--tenant")
	p.add_argument("--client-id")
	p.add_argument("--client-secret")
	p.add_argument("--demo", action="store_true",
		       help="2 subscriptions, 3 resource groups, 20 orders, one CMK error")
	a = p.parse_args()
	if a.demo:
		a.orders = 20 if a.orders is None else a.orders
		a.subscriptions = a.subscriptions or 2
		a.resource_groups = a.resource_groups or 3
	if a.orders is None:
		p.error("--orders N (or --demo) is required")
	a.subscriptions = a.subscriptions or 2
	a.resource_groups = a.resource_groups or 3
	if a.orders < 0 or a.subscriptions < 1 or a.resource_groups < 1 or a.page_size < 1:
		p.error("counts must be positive")
	if a.demo and a.orders < 4:
		p.error("--demo needs at least 4 orders")
	json.dump(World(a).build(), sys.stdout, indent=1)
	sys.stdout.write("\n")


if __name__ == "__main__":
	main()
