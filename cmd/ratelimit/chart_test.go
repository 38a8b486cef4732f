package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/limiter"
)

// schedule grants per units at start + k*every, spread over replicas.
func schedule(start time.Time, every time.Duration, rounds, per, replicas int) []grants.Grant {
	var out []grants.Grant
	for k := range rounds {
		for i := range per {
			out = append(out, grants.Grant{Replica: i % replicas, At: start.Add(time.Duration(k) * every)})
		}
	}
	return out
}

var (
	rectRe  = regexp.MustCompile(`<rect class="bar" x="([0-9.]+)" y="([0-9.]+)" width="[0-9.]+" height="([0-9.]+)"`)
	limitRe = regexp.MustCompile(`<line id="limit" x1="[0-9]+" y1="([0-9.]+)"`)
)

// stackTops returns, per bar (by x), the y of its top: the smallest y of
// its stacked rects.
func stackTops(t *testing.T, svg string) map[string]float64 {
	tops := map[string]float64{}
	for _, m := range rectRe.FindAllStringSubmatch(svg, -1) {
		y, err := strconv.ParseFloat(m[2], 64)
		require.NoError(t, err)
		if top, ok := tops[m[1]]; !ok || y < top {
			tops[m[1]] = y
		}
	}
	return tops
}

// The chart is true for any window: each bar counts the grants in the
// window ending at its time, so an exact run reaches the limit line and
// never crosses it, whether the window is 1s or 5s; a run over the limit
// crosses it and says FAIL.
func TestChartIsTrueForAnyWindow(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, limit := range []limiter.Limit{{Requests: 10, Window: 5 * time.Second}, {Requests: 20, Window: time.Second}, {Requests: 5, Window: 200 * time.Millisecond}} {
		record := schedule(start, limit.Window, 4, limit.Requests, 3) // exact: a full window every window
		f := grants.Measure(record, limit.Requests, limit.Window)
		svg := svgChart(record, 3, limit, f)
		m := limitRe.FindStringSubmatch(svg)
		require.NotNil(t, m, "a limit line")
		lineY, _ := strconv.ParseFloat(m[1], 64)
		tops := stackTops(t, svg)
		require.NotEmpty(t, tops)
		highest := float64(plotBottom)
		for _, top := range tops {
			assert.GreaterOrEqual(t, top, lineY-0.01, "%v: no bar above the limit", limit)
			highest = min(highest, top)
		}
		assert.InDelta(t, lineY, highest, 0.01, "%v: a full window reaches the line", limit)
		assert.Contains(t, svg, "PASS: no "+limit.Window.String()+" window held more than "+strconv.Itoa(limit.Requests))
		assert.Contains(t, svg, "time since the first grant (seconds)")
		assert.Contains(t, svg, "grants in the "+limit.Window.String()+" window ending here")
		assert.Contains(t, svg, `width="100%"`, "sized to the page")
	}

	limit := limiter.Limit{Requests: 10, Window: 5 * time.Second}
	over := append(schedule(start, limit.Window, 2, 10, 3), grants.Grant{At: start.Add(time.Second)})
	f := grants.Measure(over, limit.Requests, limit.Window)
	svg := svgChart(over, 3, limit, f)
	lineY, _ := strconv.ParseFloat(limitRe.FindStringSubmatch(svg)[1], 64)
	crossed := false
	for _, top := range stackTops(t, svg) {
		crossed = crossed || top < lineY-0.01
	}
	assert.True(t, crossed, "11 in a window shows above the line")
	assert.Contains(t, svg, "FAIL: a 5s window held 11, over the limit of 10")
	assert.True(t, strings.HasPrefix(svg, "<svg"))
}
