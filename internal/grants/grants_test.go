package grants

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/descope-mgmt/ratelimit/limiter"
)

func TestMeasure(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) Grant { return Grant{At: t0.Add(time.Duration(ms) * time.Millisecond)} }
	// 2 per second: 0, 0, 1000, 1000 is exact; a grant at 999 would make 3.
	exact := []Grant{at(1000), at(0), at(1000), at(0)}
	f := Measure(exact, 2, time.Second)
	assert.Equal(t, Figures{Grants: 4, Most: 2, Span: time.Second, Utilisation: 1}, f)

	over := []Grant{at(0), at(0), at(999)}
	assert.Equal(t, 3, Measure(over, 2, time.Second).Most)

	half := []Grant{at(0), at(1000)}
	assert.InDelta(t, 0.5, Measure(half, 2, time.Second).Utilisation, 1e-9)
}

func TestShares(t *testing.T) {
	t0 := time.Unix(1000, 0)
	gs := []Grant{{0, 0, t0}, {0, 1, t0}, {1, 0, t0.Add(time.Second)}, {1, 0, t0.Add(2 * time.Second)}}
	w, r := Shares(gs, 2, 2, t0.Add(time.Second))
	assert.Equal(t, []int{0, 0, 2, 0}, w)
	assert.Equal(t, []int{0, 2}, r)
	assert.Equal(t, 2, Spread(w))
}

func TestRecorderAndDrive(t *testing.T) {
	rec := &Recorder{}
	t0 := time.Unix(1000, 0)
	rec.Observe(limiter.Event{Kind: limiter.EventGrant, At: t0})
	rec.Observe(limiter.Event{Kind: limiter.EventDeny, At: t0})
	assert.Equal(t, []Grant{{At: t0}}, rec.Grants(), "only grants are kept")
	rec.Observe(limiter.Event{Kind: limiter.EventGrant, N: 3, At: t0.Add(time.Second)})
	assert.Equal(t, 4, rec.Len(), "a grant of 3 units is 3 units")

	// One worker: calls come one at a time. The first four fail while the
	// context is live; the fifth ends it, and does not count.
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	wait := Drive(ctx, 1, func(context.Context) error {
		calls++
		if calls == 5 {
			cancel()
		}
		return errors.New("down")
	})
	assert.EqualValues(t, 4, wait())
	assert.Equal(t, 5, calls)
}
