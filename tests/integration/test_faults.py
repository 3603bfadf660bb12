"""The fast subset of the fault matrix (long_fault_matrix.py holds the table,
the cells' assertions and the report): a representative fault of each
family (throttling with Retry-After as a date, connection refused,
a stalled body, a slow token endpoint, a lost answer to an applied PATCH,
the emulator killed and restarted mid-request, an order with a field of the
wrong type) against a representative
operation of each kind (readdir, a file read, errors, a write), through
real mounts with -o timeout=8. The whole table runs with scripts/test
--long (integration.long_fault_matrix)."""

import harness
import long_fault_matrix as fm

SUBSET_FAULTS = ("429-date", "refused", "stall", "token-slow", "lost-answer", "restart",
		 "body-wrong-type")
SUBSET_OPS = ("ls-rg", "cat-encryption.json", "cat-errors", "w-key_url")


class Faults(fm.Matrix):
	"""A subset of faults x a subset of operations."""

	FAULTS = [f for f in fm.FAULTS if f.name in SUBSET_FAULTS]
	OPS = [o for o in fm.OPS if o.name in SUBSET_OPS]
	TITLE = "fault matrix (subset)"


fm.add_tests(Faults, Faults.FAULTS)


if __name__ == "__main__":
	harness.main()
