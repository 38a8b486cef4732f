package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
)

// runInProcess compares the memory backend with golang.org/x/time/rate on
// the granted path, serial and parallel.
func runInProcess() []target {
	ctx := context.Background()
	// Limits that never bind at these rates.
	ours := func() *memory.Limiter {
		l, _ := memory.New(limiter.Limit{Requests: 1 << 20, Window: 10 * time.Millisecond})
		return l
	}
	peer := func() *rate.Limiter { return rate.NewLimiter(rate.Limit(1e12), 1<<30) }
	type row struct {
		name   string
		ns     float64
		allocs int64
	}
	bench := func(parallel bool, f func() func()) testing.BenchmarkResult {
		return testing.Benchmark(func(b *testing.B) {
			op := f()
			b.ReportAllocs()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						op()
					}
				})
				return
			}
			for b.Loop() {
				op()
			}
		})
	}
	fmt.Println("## In process: memory backend vs golang.org/x/time/rate (granted path)")
	fmt.Println()
	fmt.Println("| operation | serial ns/op | serial allocs/op | parallel ns/op | parallel allocs/op |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	var ts []target
	var oursSerial, peerSerial, oursPar, peerPar testing.BenchmarkResult
	for _, r := range []struct {
		name   string
		op     func() func()
		serial *testing.BenchmarkResult
		par    *testing.BenchmarkResult
	}{
		{"x/time/rate Allow", func() func() { l := peer(); return func() { l.Allow() } }, &peerSerial, &peerPar},
		{"memory TryAcquire", func() func() { l := ours(); return func() { _, _ = l.TryAcquire(ctx, 1) } }, &oursSerial, &oursPar},
		{"memory Acquire", func() func() { l := ours(); return func() { _ = l.Acquire(ctx, 1) } }, nil, nil},
	} {
		s, p := bench(false, r.op), bench(true, r.op)
		fmt.Printf("| %s | %.1f | %d | %.1f | %d |\n", r.name, float64(s.NsPerOp()), s.AllocsPerOp(), float64(p.NsPerOp()), p.AllocsPerOp())
		if r.serial != nil {
			*r.serial, *r.par = s, p
		}
	}
	fmt.Println()
	serial := float64(oursSerial.NsPerOp()) / float64(peerSerial.NsPerOp())
	par := float64(oursPar.NsPerOp()) / float64(peerPar.NsPerOp())
	ts = append(ts,
		target{"memory TryAcquire vs x/time/rate Allow, serial ns/op (want <= 1.5x)", fmt.Sprintf("%.2fx", serial), serial <= 1.5, ""},
		target{"memory TryAcquire vs x/time/rate Allow, parallel ns/op (want <= 1.5x)", fmt.Sprintf("%.2fx", par), par <= 1.5, ""},
		target{"memory backend allocations on the granted path (want 0)", fmt.Sprint(oursSerial.AllocsPerOp() + oursPar.AllocsPerOp()), oursSerial.AllocsPerOp()+oursPar.AllocsPerOp() == 0, ""})
	return ts
}
