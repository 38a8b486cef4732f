package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/descope-mgmt/ratelimit/internal/grants"
	"github.com/descope-mgmt/ratelimit/limiter"
)

type demoConfig struct {
	replicas, workers int
	limit             limitFlag
	duration, task    time.Duration
	redisURL          string
	html              string
	record            string
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := demoConfig{limit: limitFlag{limiter.PerSecond(20)}}
	fs := newFlags("demo", "Starts --replicas worker processes (this binary, as 'ratelimit worker'), each with\n--workers goroutines pushing tasks through the executor against one shared\nquota, shows their progress, then charts the grants and checks that no window\nheld more than the limit. Uses an embedded Redis unless --redis (or $REDIS_URL)\nnames a real one.", stdout)
	fs.IntVar(&cfg.replicas, "replicas", 3, "replica processes")
	fs.IntVar(&cfg.workers, "workers", 4, "goroutines per replica")
	fs.Var(&cfg.limit, "limit", "the shared quota, as requests/window (e.g. 20/1s, 100/1m)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long the replicas run")
	fs.DurationVar(&cfg.task, "task", 20*time.Millisecond, "how long each simulated task takes")
	fs.StringVar(&cfg.redisURL, "redis", "", "Redis URL to use instead of the embedded one, redis:// or rediss://; default $REDIS_URL, else the embedded one")
	fs.StringVar(&cfg.html, "html", "", "also write the chart to this file as a self-contained HTML page")
	fs.StringVar(&cfg.record, "record", "", "also write every grant to this file: replica worker unix-µs")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case cfg.replicas < 1 || cfg.replicas > 26:
		return usagef("--replicas=%d, want 1 to 26", cfg.replicas)
	case cfg.workers < 1:
		return usagef("--workers=%d, want at least 1", cfg.workers)
	case cfg.duration <= 0:
		return usagef("--duration=%v, want more than 0", cfg.duration)
	}

	// Output files are checked now, not after a run whose verdict an
	// unwritable path would lose.
	for flagName, path := range map[string]string{"--html": cfg.html, "--record": cfg.record} {
		if path != "" {
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				return usagef("%s %s: cannot write there: %v", flagName, path, err)
			}
		}
	}
	if cfg.redisURL == "" {
		cfg.redisURL = os.Getenv("REDIS_URL")
	}
	if cfg.redisURL == "" {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("start embedded Redis: %w", err)
		}
		defer m.Close()
		cfg.redisURL = "redis://" + m.Addr()
		fmt.Fprintf(stdout, "embedded Redis (miniredis) on %s\n", m.Addr())
	}
	client, err := connect(ctx, cfg.redisURL)
	if err != nil {
		return err
	}
	client.Close() // checked: the replicas make their own connections
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary to start replicas: %w", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	key := "ratelimit-demo:{" + hex.EncodeToString(b[:]) + "}"
	fmt.Fprintf(stdout, "%d replicas x %d workers sharing %v on key %s for %v\n\n", cfg.replicas, cfg.workers, cfg.limit.Limit, key, cfg.duration)

	start := time.Now().Add(time.Second) // the replicas start, connect and load the script first
	stopAt := start.Add(cfg.duration)
	d := &demoRun{cfg: cfg, replicas: make([]replicaState, cfg.replicas)}
	var wg sync.WaitGroup
	errs := make([]error, cfg.replicas)
	for r := range cfg.replicas {
		cmd := exec.CommandContext(ctx, self, "worker", "--redis", cfg.redisURL, "--key", key,
			"--limit", cfg.limit.String(), "--workers", strconv.Itoa(cfg.workers), "--task", cfg.task.String(),
			"--report", "--stop-at", strconv.FormatInt(stopAt.UnixMilli(), 10))
		var logs bytes.Buffer
		cmd.Stderr = &logs
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start replica %d: %w", r+1, err)
		}
		wg.Go(func() {
			d.read(r, out)
			if err := cmd.Wait(); err != nil {
				errs[r] = fmt.Errorf("replica %d: %v\n%s", r+1, err, logs.String())
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
progress:
	for {
		select {
		case <-done:
			break progress
		case <-tick.C:
			d.progress(stdout, time.Since(start))
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return d.report(stdout)
}

// replicaState is what the demo knows of one replica, under demoRun.mu.
type replicaState struct {
	granted, asked int
	recent         []time.Time // grant times of the last second, for the rate
}

type demoRun struct {
	cfg      demoConfig
	mu       sync.Mutex
	replicas []replicaState
	record   []grants.Grant
	refused  int // last calls, refused because their grant would pass the end
	calls    int // script calls, as the replicas counted them
}

// read consumes one replica's event lines (see worker --report).
func (d *demoRun) read(r int, out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		d.mu.Lock()
		st := &d.replicas[r]
		switch {
		case len(fields) == 2 && fields[0] == "ask":
			st.asked++
		case len(fields) == 3 && fields[0] == "grant":
			w, _ := strconv.Atoi(fields[1])
			at, _ := strconv.ParseInt(fields[2], 10, 64)
			st.granted++
			now := time.Now()
			st.recent = append(st.recent, now)
			d.record = append(d.record, grants.Grant{Replica: r, Worker: w, At: time.UnixMicro(at)})
		case len(fields) == 2 && fields[0] == "calls":
			n, _ := strconv.Atoi(fields[1])
			d.calls += n
		case len(fields) == 2 && fields[0] == "done":
			st.asked-- // its last ask ended without a grant
			d.refused++
		}
		d.mu.Unlock()
	}
}

func (d *demoRun) progress(w io.Writer, elapsed time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%6.1fs", elapsed.Seconds())
	now := time.Now()
	for r := range d.replicas {
		st := &d.replicas[r]
		for len(st.recent) > 0 && now.Sub(st.recent[0]) > time.Second {
			st.recent = st.recent[1:]
		}
		fmt.Fprintf(&b, "  | %c %4d granted %2d waiting %3d/s", replicaSymbol(r), st.granted, max(0, st.asked-st.granted), len(st.recent))
	}
	fmt.Fprintln(w, b.String())
}

func (d *demoRun) report(w io.Writer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	limit := d.cfg.limit.Limit
	f := grants.Measure(d.record, limit.Requests, limit.Window)
	if f.Grants == 0 {
		return failedError{"no grants at all: see the replicas' logs"}
	}
	_, perReplica := grants.Shares(d.record, d.cfg.replicas, d.cfg.workers, d.record[0].At)
	fmt.Fprintln(w)
	writeChart(w, d.record, d.cfg.replicas, limit)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "grants:          %d in %.1fs, per replica %v\n", f.Grants, f.Span.Seconds(), perReplica)
	fmt.Fprintf(w, "busiest window:  %d in %v (limit %d)\n", f.Most, limit.Window, limit.Requests)
	fmt.Fprintf(w, "utilisation:     %.1f%% of what the limit allows from the first grant to the last\n", 100*f.Utilisation)
	fmt.Fprintf(w, "script calls:    %d, %.3f per grant (%d of them the workers' last calls, refused at the end of the run)\n",
		d.calls, float64(d.calls)/float64(f.Grants), d.refused)
	if d.cfg.html != "" {
		if err := writeHTML(d.cfg.html, d.record, d.cfg.replicas, limit, f); err != nil {
			return err
		}
		fmt.Fprintf(w, "chart written:   %s\n", d.cfg.html)
	}
	if d.cfg.record != "" {
		var b strings.Builder
		for _, g := range d.record {
			fmt.Fprintf(&b, "%d %d %d\n", g.Replica, g.Worker, g.At.UnixMicro())
		}
		if err := os.WriteFile(d.cfg.record, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if f.Most > limit.Requests {
		fmt.Fprintf(w, "verdict:         FAIL: a window held %d, over the limit of %d\n", f.Most, limit.Requests)
		return failedError{fmt.Sprintf("a window held %d grants, over the limit of %d", f.Most, limit.Requests)}
	}
	fmt.Fprintf(w, "verdict:         PASS: %d replicas never put more than %d in any %v window\n", d.cfg.replicas, limit.Requests, limit.Window)
	return nil
}
