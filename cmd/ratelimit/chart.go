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

// bins counts grants per second since the first, per replica.
func bins(record []grants.Grant, replicas int) [][]int {
	if len(record) == 0 {
		return nil
	}
	first := record[0].At.Truncate(time.Second)
	var out [][]int
	for _, g := range record {
		i := int(g.At.Sub(first) / time.Second)
		for len(out) <= i {
			out = append(out, make([]int, replicas))
		}
		out[i][g.Replica]++
	}
	return out
}

// busiest returns the most grants in any one second (at least 1).
func busiest(rows [][]int) int {
	most := 1
	for _, row := range rows {
		total := 0
		for _, n := range row {
			total += n
		}
		most = max(most, total)
	}
	return most
}

// writeChart draws grants per second, stacked by replica, one row a second.
func writeChart(w io.Writer, record []grants.Grant, replicas int, limit limiter.Limit) {
	rows := bins(record, replicas)
	most := busiest(rows)
	scale := 1.0
	if most > 60 {
		scale = 60 / float64(most)
	}
	var legend []string
	for r := range replicas {
		legend = append(legend, fmt.Sprintf("%c = replica %d", replicaSymbol(r), r+1))
	}
	fmt.Fprintf(w, "grants per second, stacked by replica (%s); limit %v\n", strings.Join(legend, ", "), limit)
	for i, row := range rows {
		var bar strings.Builder
		total := 0
		for r, n := range row {
			bar.WriteString(strings.Repeat(string(replicaSymbol(r)), int(float64(n)*scale+0.5)))
			total += n
		}
		fmt.Fprintf(w, "%4ds | %-*s %d\n", i, int(float64(most)*scale+0.5), bar.String(), total)
	}
}

// writeHTML writes a self-contained page (inline SVG, no network) with the
// same chart and the figures.
func writeHTML(path string, record []grants.Grant, replicas int, limit limiter.Limit, f grants.Figures) error {
	rows := bins(record, replicas)
	const barW, height, top, left = 28, 300, 20, 40
	// The limit as a rate per second: the line full seconds should reach.
	perSecond := float64(limit.Requests) * float64(time.Second) / float64(limit.Window)
	most := max(busiest(rows), int(perSecond+0.5))
	var svg strings.Builder
	width := left + len(rows)*barW + 20
	fmt.Fprintf(&svg, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`, width, height+top+40)
	for i, row := range rows {
		y := float64(top + height)
		for r, n := range row {
			h := float64(n) / float64(most) * height
			y -= h
			fmt.Fprintf(&svg, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>second %d, replica %d: %d</title></rect>`,
				left+i*barW, y, barW-4, h, palette[r%len(palette)], i, r+1, n)
		}
		fmt.Fprintf(&svg, `<text x="%d" y="%d" text-anchor="middle">%ds</text>`, left+i*barW+barW/2-2, top+height+15, i)
	}
	fmt.Fprintf(&svg, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, left, top+height, width-10, top+height)
	limitY := float64(top+height) - perSecond/float64(most)*height
	fmt.Fprintf(&svg, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#000" stroke-dasharray="6 4"/><text x="%d" y="%.1f">limit %s</text>`,
		left, limitY, width-10, limitY, left+4, limitY-4, html.EscapeString(limit.String()))
	fmt.Fprintf(&svg, `<text x="5" y="%d">%d</text><text x="5" y="%d">0</text></svg>`, top+10, most, top+height)

	var legend strings.Builder
	for r := range replicas {
		fmt.Fprintf(&legend, `<span style="color:%s">&#9632;</span> replica %d &nbsp; `, palette[r%len(palette)], r+1)
	}
	page := fmt.Sprintf(`<!doctype html><html><head><meta charset="utf-8"><title>ratelimit demo</title></head>
<body style="font-family:sans-serif">
<h1>Replicas sharing %s</h1>
<p>%s</p>
%s
<p>%d grants; most in any %v window: %d (limit %d); utilisation %.1f%%.</p>
</body></html>
`, html.EscapeString(limit.String()), legend.String(), svg.String(), f.Grants, limit.Window, f.Most, limit.Requests, 100*f.Utilisation)
	return os.WriteFile(path, []byte(page), 0o644)
}
