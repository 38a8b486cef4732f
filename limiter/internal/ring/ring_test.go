package ring

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRingGrowsInsteadOfDroppingLiveUnits(t *testing.T) {
	const window = 100
	r := New(2)
	r.Record(0, 2, -window)
	// Three waiters queue two units each, a window apart, while now is 0.
	for i := int64(1); i <= 3; i++ {
		at := r.Earliest(0, 2, 2, window)
		assert.Equal(t, i*window, at)
		r.Record(at, 2, -window)
	}
	assert.Equal(t, 8, r.Len(), "no unit dropped: the first two are still in the window")
	for i := int64(3); i >= 1; i-- {
		assert.Equal(t, 2, r.Cancel(i*window, 2))
	}
	assert.Equal(t, int64(window), r.Earliest(0, 1, 2, window), "the first two still count after every waiter left")
	assert.Equal(t, 2, r.Len())
}

func TestRingDropsDeadUnits(t *testing.T) {
	r := New(2)
	r.Record(0, 2, -100)
	r.Record(100, 2, 0) // the units at 0 leave the window at 100: drop them
	assert.Equal(t, 2, r.Len())
	assert.Len(t, r.slots, 2)
	assert.Equal(t, int64(200), r.Earliest(100, 1, 2, 100))
}

func TestRemainingAndCancel(t *testing.T) {
	r := New(5)
	r.Record(10, 2, 0)
	r.Record(20, 1, 0)
	assert.Equal(t, 2, r.Remaining(20, 5, 100))
	assert.Equal(t, 4, r.Remaining(115, 5, 100), "the two at 10 left at 110")
	assert.Equal(t, 0, r.Cancel(15, 1), "nothing was granted at 15")
	assert.Equal(t, 1, r.Cancel(10, 1))
	assert.Equal(t, 3, r.Remaining(20, 5, 100))
	assert.Equal(t, []int64{10, 20}, []int64{r.Newest(2), r.Newest(1)})
}

func TestUsedCountsTheWindowEndingNowAndNotTheQueue(t *testing.T) {
	r := New(5)
	r.Record(10, 2, 0)
	r.Record(20, 1, 0)
	r.Record(150, 2, 0) // reserved after now
	assert.Equal(t, 3, r.Used(20, 100))
	assert.Equal(t, 1, r.Used(110, 100), "the two at 10 left at 110; the two at 150 are not granted yet")
	assert.Equal(t, 2, r.Used(200, 100))
	assert.Equal(t, 0, r.Used(300, 100))
}
