"""test_herd.py for 30 s: 16 readers over 1,000 orders at cache_ttl=1 send
at most one request per page of the listing per cache_ttl."""

import harness
import test_herd


class LongHerd(test_herd.Herd):
	DURATION = 30


if __name__ == "__main__":
	harness.main()
