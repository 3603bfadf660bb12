/*
 * update.c: one write to an order, end to end (update.h, docs/formats.md, "Writes").
 *
 * dbx_update_merge is the pure half: it turns a validated change
 * (validate.h) and the order as ARM has it now into the order as it should
 * be and the objects to send (the complete keyEncryptionKey, the job
 * identity, or both). The rules, from docs/formats.md, "Writes" and
 * docs/azure.md, "PATCH" and "Retries":
 *   - a key URL makes the order CustomerManaged with that URL and the vault
 *     the preflight found; the key keeps the identity it had; a key that
 *     will be reached with the system identity on a job without one gets
 *     the system identity created in the same PATCH;
 *   - MicrosoftManaged (or key_url null) drops the key, its vault and its
 *     identity; CustomerManaged alone needs a key already set;
 *   - identity None drops the job identity (and only that: the documented
 *     recovery step, None then SystemAssigned);
 *   - identity SystemAssigned (re)creates the system identity when the job
 *     lacks it and points a customer-managed key at it;
 *   - a user-assigned identity is added to the job identity
 *     ("SystemAssigned,UserAssigned", the identities already there kept)
 *     and named in the key's identityProperties, both in one PATCH.
 * IDs compare case-insensitively; a merge that changes nothing the PATCH
 * would send is a no-op (what = 0), so writing back what was read sends
 * nothing.
 *
 * dbx_update_apply is the pipeline around it: fresh GET, preflight of what
 * the PATCH will use, PATCH + long-running operation, the read-before-
 * resend rule after a PATCH that got no answer, and a check that the order
 * ARM returns shows the change. One deadline (now + timeout) bounds it all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "databoxfs/update.h"
#include "databoxfs/log.h"

#define SYSTEM_ASSIGNED "SystemAssigned"
#define USER_ASSIGNED	"UserAssigned"
#define BOTH_ASSIGNED	"SystemAssigned,UserAssigned"
/* Stands for the vault of a key that the preflight has not looked up yet. */
#define VAULT_PENDING "/pending-vault-lookup"

/* ---- small helpers ---- */

/* Replace *field with a copy of value (NULL clears it); false on ENOMEM. */
static bool set_field(char **field, const char *value)
{
	char *copy = NULL;

	if (value) {
		copy = strdup(value);
		if (!copy)
			return false;
	}
	free(*field);
	*field = copy;
	return true;
}

/* Equal IDs or URLs, case-insensitively; NULL and "" are the same absent value. */
static bool same_id(const char *a, const char *b)
{
	if (!a || !*a || !b || !*b)
		return (!a || !*a) && (!b || !*b);
	return strcasecmp(a, b) == 0;
}

static bool has_system(const struct dbx_order *o)
{
	return dbx_order_type_has(o->identity_type, SYSTEM_ASSIGNED);
}

static bool has_user(const struct dbx_order *o)
{
	return dbx_order_type_has(o->identity_type, USER_ASSIGNED);
}

static bool has_uai(const struct dbx_order *o, const char *id)
{
	for (size_t i = 0; i < o->n_uai; i++) {
		if (same_id(o->uai_ids[i], id))
			return true;
	}
	return false;
}

/* Does the order's key reach its vault with a user-assigned identity? */
static bool key_uses_uai(const struct dbx_order *o)
{
	return o->kek_identity_type && strcasecmp(o->kek_identity_type, USER_ASSIGNED) == 0;
}

/*
 * The same keyEncryptionKey as far as the PATCH body goes: the type, and for
 * a customer-managed key its URL, vault and identity (absent
 * identityProperties is the system identity, the service default).
 */
static bool same_kek(const struct dbx_order *a, const struct dbx_order *b)
{
	if (a->kek_type != b->kek_type)
		return false;
	if (a->kek_type == DBX_KEK_MICROSOFT)
		return true;
	if (!same_id(a->kek_url, b->kek_url) || !same_id(a->kek_vault_id, b->kek_vault_id))
		return false;
	if (key_uses_uai(a) != key_uses_uai(b))
		return false;
	return !key_uses_uai(a) || same_id(a->kek_uai_id, b->kek_uai_id);
}

/* Every user-assigned identity of sub is in super. */
static bool uais_within(const struct dbx_order *sub, const struct dbx_order *super)
{
	for (size_t i = 0; i < sub->n_uai; i++) {
		if (!has_uai(super, sub->uai_ids[i]))
			return false;
	}
	return true;
}

/* The same job identity as far as the PATCH body goes. */
static bool same_identity(const struct dbx_order *a, const struct dbx_order *b)
{
	if (has_system(a) != has_system(b) || has_user(a) != has_user(b))
		return false;
	return !has_user(a) || (uais_within(a, b) && uais_within(b, a));
}

/*
 * Does got (the order as ARM returns it) show the objects of want named in
 * what? Identities ARM adds on its own (none today) would not count against
 * it: only the user-assigned identities want names must be there.
 */
static bool shows_change(const struct dbx_order *got, const struct dbx_order *want, unsigned what)
{
	if ((what & DBX_PATCH_KEK) && (!got->has_details || !same_kek(got, want)))
		return false;
	if (what & DBX_PATCH_IDENTITY) {
		if (has_system(got) != has_system(want) || has_user(got) != has_user(want))
			return false;
		if (has_user(want) && !uais_within(want, got))
			return false;
	}
	return true;
}

/* MicrosoftManaged: no URL, no vault, no key identity. */
static void drop_key(struct dbx_order *o)
{
	o->kek_type = DBX_KEK_MICROSOFT;
	free(o->kek_url);
	free(o->kek_vault_id);
	free(o->kek_identity_type);
	free(o->kek_uai_id);
	o->kek_url = o->kek_vault_id = o->kek_identity_type = o->kek_uai_id = NULL;
}

/* Drop the job's user-assigned identities. */
static void drop_uais(struct dbx_order *o)
{
	for (size_t i = 0; i < o->n_uai; i++)
		free(o->uai_ids[i]);
	free(o->uai_ids);
	o->uai_ids = NULL;
	o->n_uai = 0;
}

/* Add id to the job's user-assigned identities unless it is there; false on ENOMEM. */
static bool add_uai(struct dbx_order *o, const char *id)
{
	char **grown;

	if (has_uai(o, id))
		return true;
	grown = realloc(o->uai_ids, (o->n_uai + 1) * sizeof(*grown));
	if (!grown)
		return false;
	o->uai_ids = grown;
	o->uai_ids[o->n_uai] = strdup(id);
	if (!o->uai_ids[o->n_uai])
		return false;
	o->n_uai++;
	return true;
}

/* Give the job a system-assigned identity, keeping its user-assigned ones; false on ENOMEM. */
static bool add_system(struct dbx_order *o)
{
	if (has_system(o))
		return true;
	return set_field(&o->identity_type,
			 has_user(o) && o->n_uai > 0 ? BOTH_ASSIGNED : SYSTEM_ASSIGNED);
}

/* ---- step 2: the merge ---- */

/*
 * Step 1 of the merge: the key of want (a copy of current) as change sets
 * it: a key URL with the vault vault_id (the order's own for the key it
 * already has), MicrosoftManaged or a null key_url dropping it,
 * CustomerManaged alone needing a key already set. DBX_EINVAL for a
 * contradiction or an unknown vault, DBX_ENOMEM; err says which.
 */
static enum dbx_err merge_key(const struct dbx_order *current,
			      const struct dbx_encryption_change *change, const char *vault_id,
			      struct dbx_order *want, struct dbx_error *err)
{
	bool key_set = change->has_key_url && !change->key_url_null;
	bool key_drop = (change->has_key_url && change->key_url_null) ||
			(change->has_kek_type && change->kek_type == DBX_KEK_CHOICE_MICROSOFT);

	if (key_set) {
		if (change->has_kek_type && change->kek_type == DBX_KEK_CHOICE_MICROSOFT)
			return dbx_error_set(err, DBX_EINVAL,
					     "encryption_type MicrosoftManaged contradicts a "
					     "key_url; give key_url null (or leave it out) to drop "
					     "the key");
		/* The key the order already has keeps its vault (update.h: vault_id NULL then). */
		if ((!vault_id || !*vault_id) && current->kek_type == DBX_KEK_CUSTOMER &&
		    same_id(current->kek_url, change->key_url.url))
			vault_id = current->kek_vault_id;
		if (!vault_id || !*vault_id)
			return dbx_error_set(err, DBX_EINVAL, "the vault of key %s is not known",
					     change->key_url.url);
		want->kek_type = DBX_KEK_CUSTOMER;
		if (!set_field(&want->kek_url, change->key_url.url) ||
		    !set_field(&want->kek_vault_id, vault_id))
			return dbx_error_set(err, DBX_ENOMEM, "out of memory");
		/* The key keeps the identity it had (kek_identity_type, kek_uai_id). */
	} else if (key_drop) {
		if (change->has_kek_type && change->kek_type == DBX_KEK_CHOICE_CUSTOMER)
			return dbx_error_set(err, DBX_EINVAL,
					     "encryption_type CustomerManaged needs a key: key_url "
					     "cannot be empty");
		drop_key(want);
	} else if (change->has_kek_type && change->kek_type == DBX_KEK_CHOICE_CUSTOMER) {
		if (current->kek_type != DBX_KEK_CUSTOMER || !current->kek_url ||
		    !*current->kek_url)
			return dbx_error_set(err, DBX_EINVAL,
					     "no key: write key_url first (that also makes the "
					     "order CustomerManaged)");
	}
	return DBX_OK;
}

/*
 * Step 2 of the merge: the job identity of want, and the identity its key
 * uses, as change->identity sets them (None, SystemAssigned, a
 * user-assigned ID). DBX_EINVAL for a user-assigned identity without a
 * customer-managed key, DBX_ENOMEM; err says which.
 */
static enum dbx_err merge_identity(const struct dbx_encryption_change *change,
				   struct dbx_order *want, struct dbx_error *err)
{
	if (!change->has_identity)
		return DBX_OK;
	switch (change->identity.kind) {
	case DBX_IDENTITY_NONE:
		/*
		 * The job identity only. A customer-managed key that uses the
		 * system identity is left as it is: None then SystemAssigned is
		 * the documented recovery (a new principal), and the service
		 * reports the key problem meanwhile.
		 */
		if (!set_field(&want->identity_type, "None") ||
		    !set_field(&want->principal_id, NULL) || !set_field(&want->tenant_id, NULL))
			goto oom;
		drop_uais(want);
		break;
	case DBX_IDENTITY_SYSTEM:
		if (!has_system(want)) {
			/* Re-created: the old principal is gone, the new one is ARM's. */
			if (!add_system(want) || !set_field(&want->principal_id, NULL) ||
			    !set_field(&want->tenant_id, NULL))
				goto oom;
		}
		/* Back from a user-assigned identity: the system one is (now) there. */
		if (want->kek_type == DBX_KEK_CUSTOMER && key_uses_uai(want) &&
		    (!set_field(&want->kek_identity_type, SYSTEM_ASSIGNED) ||
		     !set_field(&want->kek_uai_id, NULL)))
			goto oom;
		break;
	case DBX_IDENTITY_USER:
		if (want->kek_type != DBX_KEK_CUSTOMER)
			return dbx_error_set(
			    err, DBX_EINVAL,
			    "a user-assigned identity is used only to reach a customer-managed "
			    "key; set key_url first, or write both in encryption.json");
		/*
		 * Job identity: the spec's JobsPatchSystemAssignedToUserAssigned
		 * shape, "SystemAssigned,UserAssigned", with the identities the job
		 * already has kept (removing one the admin added is not this
		 * write's business; the service counts them toward its limit and
		 * says SsemUserErrorUserAssignedLimitReached). A job that already
		 * names this identity is left as it is, so writing back what was
		 * read changes nothing.
		 */
		if (!(has_user(want) && has_uai(want, change->identity.id))) {
			if (!set_field(&want->identity_type, BOTH_ASSIGNED) ||
			    !add_uai(want, change->identity.id))
				goto oom;
		}
		if (!set_field(&want->kek_identity_type, USER_ASSIGNED) ||
		    !set_field(&want->kek_uai_id, change->identity.id))
			goto oom;
		break;
	}
	return DBX_OK;
oom:
	return dbx_error_set(err, DBX_ENOMEM, "out of memory");
}

/*
 * Step 3 of the merge: a customer-managed key that changed needs an
 * identity to reach it: the system identity is added when the key uses no
 * user-assigned one. DBX_EINVAL when change drops the identity the key
 * would need, DBX_ENOMEM.
 */
static enum dbx_err merge_key_identity(const struct dbx_encryption_change *change, bool key_changed,
				       struct dbx_order *want, struct dbx_error *err)
{
	if (!key_changed || want->kek_type != DBX_KEK_CUSTOMER)
		return DBX_OK;
	if (change->has_identity && change->identity.kind == DBX_IDENTITY_NONE)
		return dbx_error_set(err, DBX_EINVAL,
				     "identity None leaves the customer-managed key without an "
				     "identity to reach it");
	if (!key_uses_uai(want) && !has_system(want) && !add_system(want))
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	return DBX_OK;
}

/*
 * Step 4 of the merge: the DBX_PATCH_* objects in which want differs from
 * current, or that must be sent again. Writing the key the order already
 * has is a no-op, except when the service reports the key unusable: then
 * writing it again (after the admin fixed the vault, the key or the
 * access) is the documented way to have the service re-check it, so the
 * key is sent again.
 */
static unsigned patch_objects(const struct dbx_order *current,
			      const struct dbx_encryption_change *change, bool key_changed,
			      const struct dbx_order *want)
{
	unsigned what = 0;

	if (key_changed || (change->has_key_url && !change->key_url_null &&
			    want->kek_type == DBX_KEK_CUSTOMER && dbx_order_kek_blocked(current)))
		what |= DBX_PATCH_KEK;
	if (!same_identity(current, want))
		what |= DBX_PATCH_IDENTITY;
	return what;
}

enum dbx_err dbx_update_merge(const struct dbx_order *current,
			      const struct dbx_encryption_change *change, const char *vault_id,
			      struct dbx_order **want_out, unsigned *what_out,
			      struct dbx_error *err)
{
	struct dbx_order *want = NULL;
	bool key_changed;
	enum dbx_err rc = DBX_OK;

	*want_out = NULL;
	*what_out = 0;
	if (!current || !change) {
		rc = dbx_error_set(err, DBX_EINVAL, "no order or no change");
		goto out;
	}
	want = dbx_order_dup(current);
	if (!want) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	rc = merge_key(current, change, vault_id, want, err);
	if (rc != DBX_OK)
		goto out;
	rc = merge_identity(change, want, err);
	if (rc != DBX_OK)
		goto out;
	key_changed = !same_kek(current, want);
	rc = merge_key_identity(change, key_changed, want, err);
	if (rc != DBX_OK)
		goto out;
	*what_out = patch_objects(current, change, key_changed, want);
	*want_out = want;
	want = NULL;
out:
	dbx_order_free(want);
	return rc;
}

/* ---- the whole write ---- */

/* Append a sentence to the report's notes. */
static void note(struct dbx_update_report *report, const char *text)
{
	size_t used = strlen(report->notes);

	if (used && used + 1 < sizeof(report->notes))
		report->notes[used++] = ' ';
	snprintf(report->notes + used, sizeof(report->notes) - used, "%s", text);
}

/* DBX_ETIMEDOUT when the deadline has passed before anything was sent. */
static enum dbx_err check_time(const struct dbx_clock *clock, uint64_t deadline,
			       struct dbx_error *err)
{
	if (deadline && dbx_clock_now_ms(clock) >= deadline)
		return dbx_error_set(err, DBX_ETIMEDOUT,
				     "the checks before the update used up the timeout; nothing "
				     "was sent");
	return DBX_OK;
}

/*
 * The preflight for what the PATCH will use (docs/formats.md, "Validation"). key_new: the
 * change names a key the order does not have yet (its vault is then looked
 * up: *vault_id points into pre). Otherwise, when only the identity that
 * reaches the current key changes, that identity must exist and hold access
 * on the current vault. The preflight of a new key shares the write's deadline.
 */
static enum dbx_err preflight(const struct dbx_update_config *cfg, const struct dbx_clock *clock,
			      uint64_t deadline, const char *subscription,
			      const struct dbx_order *current, const struct dbx_order *want,
			      unsigned what, const struct dbx_encryption_change *change,
			      bool key_new, struct dbx_preflight *pre, const char **vault_id,
			      struct dbx_update_report *report, struct dbx_error *err)
{
	char principal[128] = "";
	const char *pid = NULL;
	bool identity_changes;
	enum dbx_err rc = DBX_OK;

	if (want->kek_type != DBX_KEK_CUSTOMER)
		goto out;
	identity_changes = key_uses_uai(current) != key_uses_uai(want) ||
			   (key_uses_uai(want) && !same_id(current->kek_uai_id, want->kek_uai_id));
	if (key_uses_uai(want)) {
		/*
		 * Must exist (SsemUserErrorKekUserIdentityNotFound); its principal
		 * needs access. It is looked up at the same time as the vault (and
		 * the key, for a new key), below.
		 */
		if (!key_new && identity_changes && !(what & DBX_PATCH_KEK)) {
			rc = dbx_keyvault_identity_principal(cfg->kv, want->kek_uai_id, principal,
							     sizeof(principal), err);
			if (rc != DBX_OK)
				goto out;
			pid = principal;
		}
	} else if (has_system(current)) {
		pid = current->principal_id;
	}
	if (key_new) {
		/* pid NULL or "": the system identity is created by this write; the preflight notes
		 * it. */
		rc = dbx_keyvault_preflight_uai(cfg->kv, deadline, subscription, &change->key_url,
						key_uses_uai(want) ? want->kek_uai_id : NULL, pid,
						dbx_clock_wall(clock), principal, sizeof(principal),
						pre, err);
		if (pre->notes[0])
			note(report, pre->notes);
		if (rc != DBX_OK)
			goto out;
		*vault_id = pre->vault.id;
	} else if ((what & DBX_PATCH_KEK) && identity_changes) {
		struct dbx_vault_info vault;

		/* The current key's vault, by its ID: read afresh by check_access. */
		memset(&vault, 0, sizeof(vault));
		snprintf(vault.id, sizeof(vault.id), "%s",
			 current->kek_vault_id ? current->kek_vault_id : "");
		vault.soft_delete = true;
		vault.policies_known = true;
		if (key_uses_uai(want)) {
			rc = dbx_keyvault_check_access_uai(cfg->kv, deadline, &vault,
							   want->kek_uai_id, principal,
							   sizeof(principal), err);
			if (rc != DBX_OK)
				goto out;
		} else if (!pid || !*pid) {
			note(report, "the system identity's principal is not known yet; access "
				     "policies not checked.");
			goto out;
		} else {
			rc = dbx_keyvault_check_access(cfg->kv, &vault, pid, err);
			if (rc != DBX_OK)
				goto out;
		}
	}
	if ((what & DBX_PATCH_IDENTITY) && !has_system(current) && has_system(want) &&
	    !key_uses_uai(want))
		note(report,
		     "the order gets a new system-assigned identity: grant its principal ID "
		     "(principal_id) get, wrapKey and unwrapKey in the key vault.");
out:
	return rc;
}

/* What the order must show for a PATCH of want's objects what (dbx_arm_shows_fn's ctx). */
struct expected {
	const struct dbx_order *want;
	unsigned what;
};

static bool shows_expected(const struct dbx_order *order, void *ctx)
{
	const struct expected *x = ctx;

	return shows_change(order, x->want, x->what);
}

/* What send_patch hands arm.c's progress hook: where to keep the IDs, whom to tell. */
struct watch {
	const struct dbx_update_config *cfg;
	struct dbx_update_report *report;
};

static void on_arm_progress(void *ctx, const struct dbx_arm_progress *p)
{
	struct watch *w = ctx;
	struct dbx_update_progress up = {
	    .stage = DBX_UPDATE_ARM, .notes = w->report->notes, .arm = p};

	if (p->accepted) {
		snprintf(w->report->request_id, sizeof(w->report->request_id), "%s", p->request_id);
		snprintf(w->report->correlation_id, sizeof(w->report->correlation_id), "%s",
			 p->correlation_id);
	}
	if (w->cfg->progress)
		w->cfg->progress(w->cfg->progress_ctx, &up);
}

/* Tell cfg's progress hook, if any, that body is about to be sent (or, dry, would be). */
static void tell_body(const struct dbx_update_config *cfg, enum dbx_update_stage stage,
		      const char *body, const struct dbx_order *current,
		      const struct dbx_update_report *report)
{
	struct dbx_update_progress up = {
	    .stage = stage, .body = body, .current = current, .notes = report->notes};

	if (cfg->progress)
		cfg->progress(cfg->progress_ctx, &up);
}

/*
 * Sends body; *sent and *accepted as dbx_arm_patch_job_ex. Once ARM accepted
 * it, the order itself decides when the operation cannot (arm.h,
 * dbx_arm_patch_job_verify).
 */
static enum dbx_err send_patch(const struct dbx_update_config *cfg, const char *subscription,
			       const char *resource_group, const char *name,
			       const struct dbx_order *current, const struct dbx_order *want,
			       unsigned what, uint64_t deadline, bool *sent, bool *accepted,
			       struct dbx_order **out, struct dbx_update_report *report,
			       struct dbx_error *err)
{
	struct expected x = {.want = want, .what = what};
	struct watch w = {.cfg = cfg, .report = report};
	char *body = NULL;
	enum dbx_err rc;

	*sent = false;
	*accepted = false;
	rc = dbx_order_patch_body(want, what, &body, err);
	if (rc != DBX_OK)
		goto out;
	tell_body(cfg, DBX_UPDATE_SENDING, body, current, report);
	rc = dbx_arm_patch_job_observe(cfg->arm, subscription, resource_group, name, body,
				       cfg->lro_poll_ms, deadline, shows_expected, &x,
				       on_arm_progress, &w, sent, accepted, out, err);
out:
	free(body);
	return rc;
}

/*
 * Steps 2 and 3 of a write, on current (the order read fresh): merge
 * change with the vault still unknown, so contradictions fail before any
 * Key Vault request and a write of what is already there needs none; when
 * there is something to send, run the preflight for it (*pre, allocated
 * here, holds what it found: the caller frees it) and, for a key new to
 * the order, merge again with the vault it found (*vault_id). *want and
 * *what as dbx_update_merge gives them (what 0: nothing to send); *key_new
 * whether the key is new to the order.
 */
static enum dbx_err merge_and_preflight(const struct dbx_update_config *cfg,
					const struct dbx_clock *clock, uint64_t deadline,
					const char *subscription, const struct dbx_order *current,
					const struct dbx_encryption_change *change,
					struct dbx_order **want, unsigned *what,
					const char **vault_id, struct dbx_preflight **pre,
					struct dbx_update_report *report, struct dbx_error *err)
{
	/* A key URL the order already has keeps its vault. */
	bool key_new = change->has_key_url && !change->key_url_null &&
		       !(current->kek_type == DBX_KEK_CUSTOMER &&
			 same_id(current->kek_url, change->key_url.url) && current->kek_vault_id &&
			 *current->kek_vault_id);
	enum dbx_err rc;

	if (change->has_key_url && !change->key_url_null)
		*vault_id = key_new ? VAULT_PENDING : current->kek_vault_id;
	rc = dbx_update_merge(current, change, *vault_id, want, what, err);
	if (rc != DBX_OK || *what == 0)
		return rc;
	*pre = calloc(1, sizeof(**pre));
	if (!*pre)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	rc = preflight(cfg, clock, deadline, subscription, current, *want, *what, change, key_new,
		       *pre, vault_id, report, err);
	if (rc != DBX_OK || !key_new)
		return rc;
	dbx_order_free(*want);
	*want = NULL;
	return dbx_update_merge(current, change, *vault_id, want, what, err);
}

/*
 * Step 5 of a write, after a PATCH that was sent but got a 5xx or no
 * answer (first_rc, described by err): it may or may not have landed.
 * Read the order; when it shows the change, that is *final and the write
 * succeeded. Otherwise merge change into it again (*want and *what anew)
 * and resend once, unless the merge finds nothing left to send. When the
 * order cannot be read back (tried again while time is left): DBX_ETIMEDOUT,
 * err saying the update may or may not have been applied; first_rc's words
 * stay in the message.
 */
#define READ_BACK_EVERY_MS 1000 /* between reads of an order whose PATCH lost its answer */
#define READ_BACK_TRIES	   30	/* without a timeout */

/*
 * Read the order after a PATCH that lost its answer. ARM itself may have
 * gone away with it (a restart), so a read that fails at the transport, or
 * is throttled or timed out, is tried again every READ_BACK_EVERY_MS while
 * time is left; the last one starts a second before the deadline.
 */
static enum dbx_err read_back(const struct dbx_update_config *cfg, const char *subscription,
			      const char *resource_group, const char *name, uint64_t deadline,
			      struct dbx_order **out, struct dbx_error *err)
{
	const struct dbx_clock *clock = cfg->clock ? cfg->clock : dbx_arm_clock(cfg->arm);
	enum dbx_err rc;

	for (unsigned tries = 1;; tries++) {
		rc = dbx_arm_get_job_until(cfg->arm, subscription, resource_group, name, deadline,
					   out, err);
		if (rc != DBX_EUNREACHABLE && rc != DBX_EREMOTE && rc != DBX_ETIMEDOUT &&
		    rc != DBX_ETHROTTLED && rc != DBX_EINTR)
			return rc;
		if (deadline ? dbx_clock_now_ms(clock) + 2 * READ_BACK_EVERY_MS > deadline
			     : tries >= READ_BACK_TRIES)
			return rc;
		(void)clock->sleep_ms(clock->ctx, READ_BACK_EVERY_MS); /* a signal cuts it short */
	}
}

static enum dbx_err resend_unless_landed(const struct dbx_update_config *cfg,
					 const char *subscription, const char *resource_group,
					 const char *name,
					 const struct dbx_encryption_change *change,
					 const char *vault_id, uint64_t deadline,
					 enum dbx_err first_rc, struct dbx_order **want,
					 unsigned *what, bool *accepted, struct dbx_order **final,
					 struct dbx_update_report *report, struct dbx_error *err)
{
	struct dbx_error first = err ? *err : (struct dbx_error){0};
	struct dbx_error ignored = {0};
	struct dbx_order *fresh = NULL;
	enum dbx_err rc;
	bool sent2 = false;

	(void)first_rc; /* its message is in first */
	if (read_back(cfg, subscription, resource_group, name, deadline, &fresh, &ignored) !=
	    DBX_OK) {
		/* It may have landed: never a plain failure (docs/formats.md, "Writes"). */
		rc = DBX_ETIMEDOUT;
		if (err) {
			*err = first;
			dbx_error_set(err, rc,
				      "%s (ARM did not confirm the update and the order could "
				      "not be read back within the timeout: it may or may not have "
				      "been applied)",
				      first.message);
		}
		goto out;
	}
	if (shows_change(fresh, *want, *what)) {
		dbx_log(DBX_LOG_INFO,
			"update of %s: no answer to the PATCH (%s), but the "
			"order shows the change",
			name, first.message);
		dbx_error_clear(err);
		rc = DBX_OK;
		*final = fresh;
		fresh = NULL;
		goto out;
	}
	dbx_log(DBX_LOG_INFO,
		"update of %s: no answer to the PATCH (%s), the "
		"order does not show the change: sending it once more",
		name, first.message);
	dbx_order_free(*want);
	*want = NULL;
	dbx_error_clear(err);
	rc = dbx_update_merge(fresh, change, vault_id, want, what, err);
	if (rc != DBX_OK)
		goto out;
	if (*what == 0) {
		*final = fresh;
		fresh = NULL;
		goto out;
	}
	rc = send_patch(cfg, subscription, resource_group, name, fresh, *want, *what, deadline,
			&sent2, accepted, final, report, err);
	report->patched = report->patched || sent2;
out:
	dbx_order_free(fresh);
	return rc;
}

enum dbx_err dbx_update_apply(const struct dbx_update_config *cfg, const char *subscription,
			      const char *resource_group, const char *name,
			      const struct dbx_encryption_change *change, struct dbx_order **result,
			      struct dbx_update_report *report, struct dbx_error *err)
{
	struct dbx_update_report scratch;
	struct dbx_order *current = NULL, *want = NULL, *final = NULL;
	struct dbx_preflight *pre = NULL;
	const struct dbx_clock *clock;
	const char *vault_id = NULL;
	uint64_t deadline;
	unsigned what = 0;
	bool sent = false, accepted = false;
	enum dbx_err rc;

	if (!report)
		report = &scratch;
	memset(report, 0, sizeof(*report));
	dbx_error_clear(err);
	if (result)
		*result = NULL;
	if (!cfg || !cfg->arm || !cfg->kv || !change || !result) {
		rc = dbx_error_set(err, DBX_EINVAL, "no ARM client, change or result");
		goto out;
	}
	clock = cfg->clock ? cfg->clock : dbx_arm_clock(cfg->arm);
	deadline = cfg->timeout_ms ? dbx_clock_now_ms(clock) + cfg->timeout_ms : 0;

	/* 1. The order as ARM has it now. */
	rc = dbx_arm_get_job_until(cfg->arm, subscription, resource_group, name, deadline, &current,
				   err);
	if (rc != DBX_OK)
		goto out;
	if (!current->has_details) {
		rc = dbx_error_set(err, DBX_EREMOTE,
				   "ARM sent order %s without its details: its key settings are "
				   "unknown, nothing was changed",
				   name);
		goto out;
	}

	/* 2 and 3. The merge, and the preflight of what it will send. */
	rc = merge_and_preflight(cfg, clock, deadline, subscription, current, change, &want, &what,
				 &vault_id, &pre, report, err);
	if (rc != DBX_OK)
		goto out;
	if (what == 0) {
		report->noop = true;
		*result = current;
		current = NULL;
		goto out;
	}
	rc = check_time(clock, deadline, err);
	if (rc != DBX_OK)
		goto out;

	/* 4. The last moment a Ctrl-C stops the write: after this it runs to its end. */
	if (cfg->interrupted && cfg->interrupted(cfg->interrupted_ctx) != 0) {
		rc = dbx_error_set(err, DBX_EINTR, "interrupted before the update was sent");
		goto out;
	}
	if (cfg->dry_run) {
		/* Everything but the PATCH ran: say what it would have been, send nothing. */
		char *body = NULL;

		rc = dbx_order_patch_body(want, what, &body, err);
		if (rc != DBX_OK)
			goto out;
		tell_body(cfg, DBX_UPDATE_DRY_RUN, body, current, report);
		dbx_log(DBX_LOG_INFO, "dry run: %s/%s/%s: would PATCH %s", subscription,
			resource_group, name, body);
		free(body);
		report->dry_run = true;
		*result = current;
		current = NULL;
		goto out;
	}
	rc = send_patch(cfg, subscription, resource_group, name, current, want, what, deadline,
			&sent, &accepted, &final, report, err);
	report->patched = sent;

	/* 5. The PATCH itself got a 5xx or lost its connection: read before resending. */
	if ((rc == DBX_EREMOTE || rc == DBX_ETIMEDOUT) && sent && !accepted)
		rc = resend_unless_landed(cfg, subscription, resource_group, name, change, vault_id,
					  deadline, rc, &want, &what, &accepted, &final, report,
					  err);
	if (rc != DBX_OK)
		goto out;

	/* 6. ARM's word is checked against the order it returns. */
	if (!shows_change(final, want, what)) {
		rc = dbx_error_set(err, DBX_EREMOTE,
				   "ARM accepted the update but the order does not show it");
		goto out;
	}
	*result = final;
	final = NULL;
out:
	if (rc != DBX_OK && err)
		err->err = rc;
	free(pre);
	dbx_order_free(current);
	dbx_order_free(want);
	dbx_order_free(final);
	return rc;
}
