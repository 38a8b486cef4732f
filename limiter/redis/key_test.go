package redis_test

import (
	"net/url"
	"strings"
	"testing"

	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

func FuzzKeyFor(f *testing.F) {
	f.Add("acme", "user-create", "acme", "x")
	f.Add("a}{b", "c:d", "a", "}{b")
	f.Add("", "", "{", "}")
	f.Add("t:1", "x", "t", "1:x")
	f.Fuzz(func(t *testing.T, tenant, name, other, otherName string) {
		key := redislimiter.KeyFor("rl", tenant, name)
		if !strings.HasPrefix(key, "rl:{") {
			t.Fatalf("%q lost its prefix", key)
		}
		// The hash tag is the first {...}: it must be exactly the tenant.
		open, closing := strings.IndexByte(key, '{'), strings.IndexByte(key, '}')
		raw := key[open+1 : closing]
		tag, err := url.QueryUnescape(raw)
		if raw == "*" { // only the empty tenant is written *
			tag = ""
		}
		if err != nil || tag != tenant {
			t.Fatalf("KeyFor(%q, %q) = %q: hash tag %q, want the tenant", tenant, name, key, key[open+1:closing])
		}
		if redislimiter.Slot(key) != redislimiter.Slot(redislimiter.KeyFor("rl", tenant, "another")) {
			t.Fatalf("a tenant's keys must share a slot")
		}
		if (tenant != other || name != otherName) && key == redislimiter.KeyFor("rl", other, otherName) {
			t.Fatalf("(%q, %q) and (%q, %q) share the key %q", tenant, name, other, otherName, key)
		}
	})
}
