package redis

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

// An announcement carries its key byte for byte: spaces, NBSP, \r, \v and
// U+3000 in a key all stay in it.
func TestParseAnnouncementKeepsEveryByteOfTheKey(t *testing.T) {
	for _, key := range []string{"q", "a b", "p\u00a0x", "p\rx", "p\vx", "p\u3000x", " lead", "trail ", "{t}:x y"} {
		got, now, until, ok := parseAnnouncement(key + " 1000 2000")
		assert.True(t, ok, "%q", key)
		assert.Equal(t, key, got)
		assert.Equal(t, []int64{1000, 2000}, []int64{now, until})
	}
	for _, bad := range []string{"", "q", "q 1", "q x 2", "q 1 y"} {
		_, _, _, ok := parseAnnouncement(bad)
		assert.False(t, ok, "%q", bad)
	}
}

// The watcher forgets a key once the pauses it heard of have ended, and
// wakes every waiter on each pause.
func TestWatcherForgetsEndedPauses(t *testing.T) {
	w := &Watcher{until: map[string]int64{}, changed: make(chan struct{})}
	woke := w.pauses()
	w.notify("a", 100, 200)
	select {
	case <-woke:
	default:
		t.Fatal("a pause wakes the waiters")
	}
	w.notify("b", 150, 300)
	assert.True(t, w.pausedPast([]string{"a"}, 199))
	assert.False(t, w.pausedPast([]string{"a"}, 200))
	w.notify("c", 250, 400) // a's pause ended at 200
	assert.Len(t, w.until, 2)
	assert.NotContains(t, w.until, "a")
	assert.True(t, w.pausedPast([]string{"x", "b"}, 299))

	// Issue 10's 200,000 keys heard of (15 MB, never forgotten, then): once
	// their pauses ended, the next announcement leaves only itself.
	for i := range 200_000 {
		w.until["k"+strconv.Itoa(i)] = 2000
	}
	w.notify("last", 3000, 4000)
	assert.Len(t, w.until, 1)
}
