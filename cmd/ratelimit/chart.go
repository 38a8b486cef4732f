package main

import (
	"fmt"
	"html"
	"io"
	"os"
	"strings"
	"time"

	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/limiter"
)

func replicaSymbol(r int) rune { return rune('A' + r) }

var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

// series is the chart's one measure, true for any window: at the end of
// each step since the first grant, the grants of each replica in the
// window of the limit's length ending there. The limit bounds every bar's
// total, whatever the window.
type series struct {
	step time.Duration
	rows [][]int // rows[k][replica]: grants in (end_k - window, end_k]
}

// slide computes the series at most steps points; a step is at least a
// tenth of the window, and at least 1ms.
func slide(record []grants.Grant, replicas int, window time.Duration, steps int) series {
	if len(record) == 0 {
		return series{step: window}
	}
	first, last := record[0].At, record[len(record)-1].At
	span := last.Sub(first)
	step := max(window/10, span/time.Duration(steps), time.Millisecond)
	n := int(span/step) + 1
	s := series{step: step, rows: make([][]int, n)}
	for k := range s.rows {
		s.rows[k] = make([]int, replicas)
		end := first.Add(time.Duration(k) * step)
		for _, g := range record {
			if g.At.After(end.Add(-window)) && !g.At.After(end) {
				s.rows[k][g.Replica]++
			}
		}
	}
	return s
}

func (s series) busiest() int {
	most := 0
	for _, row := range s.rows {
		total := 0
		for _, n := range row {
			total += n
		}
		most = max(most, total)
	}
	return most
}

// writeChart draws, one row a step, the grants in the window ending there,
// stacked by replica, against the limit.
func writeChart(w io.Writer, record []grants.Grant, replicas int, limit limiter.Limit) {
	s := slide(record, replicas, limit.Window, 20)
	most := max(s.busiest(), limit.Requests)
	scale := 1.0
	if most > 60 {
		scale = 60 / float64(most)
	}
	var legend []string
	for r := range replicas {
		legend = append(legend, fmt.Sprintf("%c = replica %d", replicaSymbol(r), r+1))
	}
	fmt.Fprintf(w, "grants in the %v window ending at each time, stacked by replica (%s); '|' marks the limit, %d\n",
		limit.Window, strings.Join(legend, ", "), limit.Requests)
	mark := int(float64(limit.Requests)*scale + 0.5)
	for k, row := range s.rows {
		var bar strings.Builder
		total := 0
		for r, n := range row {
			bar.WriteString(strings.Repeat(string(replicaSymbol(r)), int(float64(n)*scale+0.5)))
			total += n
		}
		line := []rune(fmt.Sprintf("%-*s", int(float64(most)*scale+0.5)+1, bar.String()))
		if mark < len(line) && line[mark] == ' ' {
			line[mark] = '|'
		}
		fmt.Fprintf(w, "%7.2fs | %s %d\n", (time.Duration(k) * s.step).Seconds(), string(line), total)
	}
}

// chart geometry, in SVG user units (the page scales the SVG to its width).
const (
	chartW, chartH                = 1000, 420
	plotLeft, plotTop             = 70, 40
	plotRight, plotBottom         = 980, 360
	plotWidth, plotHeight         = plotRight - plotLeft, plotBottom - plotTop
	svgFont                       = `font-family="sans-serif" font-size="13"`
	gapFraction           float64 = 0.15
)

// svgChart draws the series as stacked bars with the limit as a dashed
// line, axis titles and units, and the verdict.
func svgChart(record []grants.Grant, replicas int, limit limiter.Limit, f grants.Figures) string {
	s := slide(record, replicas, limit.Window, 120)
	top := max(s.busiest(), limit.Requests) + max(1, limit.Requests/10)
	yOf := func(v float64) float64 { return plotBottom - v/float64(top)*plotHeight }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" %s>`, chartW, chartH, svgFont)
	verdict, color := fmt.Sprintf("PASS: no %v window held more than %d (busiest %d)", limit.Window, limit.Requests, f.Most), "#2e7d32"
	if f.Most > limit.Requests {
		verdict, color = fmt.Sprintf("FAIL: a %v window held %d, over the limit of %d", limit.Window, f.Most, limit.Requests), "#c62828"
	}
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="16" font-weight="bold" fill="%s" id="verdict">%s</text>`, plotLeft, color, html.EscapeString(verdict))
	barW := float64(plotWidth) / float64(max(1, len(s.rows)))
	for k, row := range s.rows {
		y := float64(plotBottom)
		for r, n := range row {
			h := float64(n) / float64(top) * plotHeight
			y -= h
			fmt.Fprintf(&b, `<rect class="bar" x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"><title>%.2fs: replica %d, %d in the window</title></rect>`,
				plotLeft+float64(k)*barW, y, barW*(1-gapFraction), h, palette[r%len(palette)], (time.Duration(k) * s.step).Seconds(), r+1, n)
		}
	}
	// Axes, ticks and titles.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, plotLeft, plotBottom, plotRight, plotBottom)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, plotLeft, plotTop, plotLeft, plotBottom)
	for _, v := range []int{0, top / 2, top} {
		fmt.Fprintf(&b, `<text x="%d" y="%.2f" text-anchor="end">%d</text>`, plotLeft-6, yOf(float64(v))+4, v)
	}
	total := time.Duration(len(s.rows)-1) * s.step
	for i := 0; i <= 4; i++ {
		t := total * time.Duration(i) / 4
		fmt.Fprintf(&b, `<text x="%.2f" y="%d" text-anchor="middle">%.1f</text>`, plotLeft+float64(plotWidth)*float64(i)/4, plotBottom+18, t.Seconds())
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time since the first grant (seconds)</text>`, plotLeft+plotWidth/2, plotBottom+40)
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">grants in the %v window ending here</text>`, plotTop+plotHeight/2, limit.Window)
	ly := yOf(float64(limit.Requests))
	fmt.Fprintf(&b, `<line id="limit" x1="%d" y1="%.2f" x2="%d" y2="%.2f" stroke="#000" stroke-width="2" stroke-dasharray="8 5"/>`, plotLeft, ly, plotRight, ly)
	fmt.Fprintf(&b, `<text x="%d" y="%.2f" text-anchor="end">limit: %d per %v</text>`, plotRight, ly-6, limit.Requests, limit.Window)
	b.WriteString(`</svg>`)
	return b.String()
}

// writeHTML writes a self-contained page (inline SVG, no network) with the
// chart, the verdict and the figures.
func writeHTML(path string, record []grants.Grant, replicas int, limit limiter.Limit, f grants.Figures) error {
	var legend strings.Builder
	for r := range replicas {
		fmt.Fprintf(&legend, `<span style="color:%s">&#9632;</span> replica %d &nbsp; `, palette[r%len(palette)], r+1)
	}
	page := fmt.Sprintf(`<!doctype html><html><head><meta charset="utf-8"><title>ratelimit demo: %d replicas sharing %s</title></head>
<body style="font-family:sans-serif;margin:24px;max-width:1200px">
<h1>%d replicas sharing %s</h1>
<p>Each bar counts the grants in the %v window that ends at its time, stacked by replica: an exact limiter keeps every bar at or under the dashed line.</p>
<p>%s</p>
%s
<p>%d grants in %.1fs; most in any %v window: %d (limit %d); utilisation %.1f%% of what the limit allows.</p>
</body></html>
`, replicas, html.EscapeString(limit.String()), replicas, html.EscapeString(limit.String()), limit.Window, legend.String(),
		svgChart(record, replicas, limit, f), f.Grants, f.Span.Seconds(), limit.Window, f.Most, limit.Requests, 100*f.Utilisation)
	return os.WriteFile(path, []byte(page), 0o644)
}
