// Command bench measures this project's limiters side by side with their
// peers, in one process, against one redis-server it starts itself, and
// prints one table with ratios and a pass/short mark per target. Run it with
// `make bench` (or `go run .` here). Absolute figures drift from run to run
// on shared machines; compare only figures from one run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

var (
	cell       = flag.Duration("cell", 2*time.Second, "how long each throughput cell runs")
	contention = flag.Duration("contention", 8*time.Second, "how long each contention scenario runs")
	only       = flag.String("only", "", "run only these sections, comma-separated: throughput, contention, latency, servercost, inprocess")
)

func main() {
	flag.Parse()
	addr, stop, err := startRedis()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	defer stop()
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 128})
	defer c.Close()

	fmt.Printf("# ratelimit benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Printf("machine: %d cores, %s; %s; redis-server %s on loopback; go-redis pool 128\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), redisVersion(ctx, c))
	fmt.Printf("command: make bench (cd bench && go run . -cell %v -contention %v)\n\n", *cell, *contention)

	var targets []target
	if section("throughput") {
		targets = append(targets, runThroughput(ctx, c)...)
	}
	if section("contention") {
		targets = append(targets, runContention(ctx, addr)...)
	}
	if section("latency") {
		runLatency(ctx, c)
	}
	if section("servercost") {
		targets = append(targets, runServerCost(ctx, c)...)
	}
	if section("inprocess") {
		targets = append(targets, runInProcess()...)
	}

	fmt.Println("## Targets")
	fmt.Println()
	fmt.Println("| target | measured | mark | note |")
	fmt.Println("| --- | --- | --- | --- |")
	short := 0
	for _, t := range targets {
		mark := "pass"
		if !t.pass {
			mark = "short"
			short++
		}
		fmt.Printf("| %s | %s | %s | %s |\n", t.name, t.ratio, mark, t.note)
	}
	fmt.Printf("\n%d of %d targets met.\n", len(targets)-short, len(targets))
}

// section reports whether -only lets the named section run.
func section(name string) bool {
	return *only == "" || slices.Contains(strings.Split(*only, ","), name)
}

// target is one line of the final table.
type target struct {
	name  string
	ratio string
	pass  bool
	note  string
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.Lines(string(b)) {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return runtime.GOARCH
}

func redisVersion(ctx context.Context, c *goredis.Client) string {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	out, _ := exec.Command("redis-server", "--version").Output()
	return strings.TrimSpace(string(out))
}
