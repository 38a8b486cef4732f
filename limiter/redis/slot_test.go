package redis_test

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

func TestSlotMatchesRedis(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	assert.Equal(t, 12739, redislimiter.Slot("123456789"))
	assert.Equal(t, 12182, redislimiter.Slot("foo"))
	assert.Equal(t, redislimiter.Slot("user1000"), redislimiter.Slot("{user1000}.following"))
	assert.Equal(t, redislimiter.Slot("{}x"), redislimiter.Slot("{}x"), "an empty tag hashes the whole key")

	// A cluster-enabled server answers CLUSTER KEYSLOT without any slots.
	srv := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer c.Close()
	for _, key := range []string{"{descope:p1}:user-create", "a{b}c", "{}x", "plain", "x{y", "{a}{b}"} {
		want, err := c.ClusterKeySlot(t.Context(), key).Result()
		require.NoError(t, err)
		assert.EqualValues(t, want, redislimiter.Slot(key), key)
	}
}

func TestCompositeRejectsKeysInDifferentSlots(t *testing.T) {
	c := redistest.Client(t)
	l, err := redislimiter.NewComposite(c, []limiter.Quota{
		{Key: "descope:p1:user-create", Limits: []limiter.Limit{limiter.PerMinute(100)}},
		{Key: "descope:p1:user-mgmt", Limits: []limiter.Limit{limiter.PerMinute(500)}},
	})
	assert.Nil(t, l)
	assert.ErrorIs(t, err, limiter.ErrInvalidConfig)
	assert.ErrorContains(t, err, "give them one hash tag")

	_, err = redislimiter.NewComposite(c, []limiter.Quota{
		{Key: "{descope:p1}:user-create", Limits: []limiter.Limit{limiter.PerMinute(100)}},
		{Key: "{descope:p1}:user-mgmt", Limits: []limiter.Limit{limiter.PerMinute(500)}},
	})
	require.NoError(t, err)

	for _, tc := range []struct {
		quotas []limiter.Quota
		text   string
	}{
		{nil, "no quotas"},
		{[]limiter.Quota{{Key: "k"}}, `quota "k" has no limits`},
		{[]limiter.Quota{{Key: "k", Limits: []limiter.Limit{limiter.PerSecond(1)}}, {Key: "k", Limits: []limiter.Limit{limiter.PerSecond(2)}}}, "named twice"},
	} {
		_, err := redislimiter.NewComposite(c, tc.quotas)
		assert.ErrorContains(t, err, tc.text)
	}
}

func TestQuotasAndKeysListEveryQuota(t *testing.T) {
	quotas := []limiter.Quota{
		{Key: redislimiter.KeyFor("descope", "p1", "user-create"), Limits: []limiter.Limit{limiter.PerMinute(100)}},
		{Key: redislimiter.KeyFor("descope", "p1", "user-mgmt"), Limits: []limiter.Limit{limiter.PerMinute(500), limiter.PerHour(10000)}},
	}
	l, err := redislimiter.NewComposite(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}), quotas)
	require.NoError(t, err)
	assert.Equal(t, []string{"descope:{p1}:user-create", "descope:{p1}:user-mgmt"}, l.Keys())
	got := l.Quotas()
	assert.Equal(t, quotas, got)
	got[1].Limits[0] = limiter.PerSecond(1)
	assert.Equal(t, limiter.PerMinute(500), l.Quotas()[1].Limits[0], "a copy: changing it changes nothing")
}
