package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/descope-mgmt/ratelimit/executor"
	"github.com/descope-mgmt/ratelimit/internal/clock"
	"github.com/descope-mgmt/ratelimit/internal/redishook"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/prommetrics"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

type workerConfig struct {
	redisURL  string
	key       string
	limit     limitFlag
	workers   int
	task      time.Duration
	duration  time.Duration
	logFormat string
	metrics   string
	report    bool
	stopAt    int64
	summary   time.Duration
}

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := workerConfig{limit: limitFlag{limiter.PerSecond(20)}}
	fs := newFlags("worker", "Runs one replica: --workers goroutines, each acquiring one unit of the shared\nquota before every (simulated) task. Stops on SIGINT/SIGTERM, giving back\nreservations it has not used.", stdout)
	redisArg := redisFlag(fs, "Redis URL")
	fs.StringVar(&cfg.key, "key", "ratelimit:{default}", "the quota's Redis key: replicas with the same key share one quota")
	fs.Var(&cfg.limit, "limit", "the quota, as requests/window (e.g. 20/1s, 100/1m)")
	fs.IntVar(&cfg.workers, "workers", 4, "goroutines acquiring and running tasks")
	fs.DurationVar(&cfg.task, "task", 50*time.Millisecond, "how long each simulated task takes")
	fs.DurationVar(&cfg.duration, "duration", 0, "stop after this long; 0 runs until SIGINT or SIGTERM")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&cfg.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. :9090)")
	fs.DurationVar(&cfg.summary, "summary-interval", 30*time.Second, "log a one-line summary (granted, waiting, errors) this often; 0 turns it off")
	fs.BoolVar(&cfg.report, "report", false, "print one line per event on stdout, for the demo")
	fs.Int64Var(&cfg.stopAt, "stop-at", 0, "stop at this Unix time in milliseconds, for the demo")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg.redisURL = redisURL(*redisArg)
	switch {
	case cfg.workers < 1:
		return usagef("--workers=%d, want at least 1", cfg.workers)
	case cfg.task < 0 || cfg.duration < 0 || cfg.summary < 0:
		return usagef("--task, --duration and --summary-interval must not be negative")
	case cfg.logFormat != "text" && cfg.logFormat != "json":
		return usagef("--log-format=%q, want text or json", cfg.logFormat)
	case cfg.key == "":
		return usagef("--key is empty")
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, nil)
	if cfg.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, nil)
	}
	log := slog.New(handler)

	client, err := connect(ctx, cfg.redisURL)
	if err != nil {
		return err
	}
	defer client.Close()
	calls := redishook.Scripts()
	client.AddHook(calls)
	// A limit that a descope.Transport learned for this key (Descope
	// refused requests within the configured one) applies here too.
	if n, ttl, err := learnedLimit(ctx, client, cfg.key); err != nil {
		return err
	} else if n > 0 && n < cfg.limit.Requests {
		log.Warn("using the learned limit stored beside the key", "key", cfg.key, "learned", n, "configured", cfg.limit.Requests, "expires_in", ttl.Round(time.Second).String())
		cfg.limit.Requests = n
	}

	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	if cfg.stopAt > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.UnixMilli(cfg.stopAt))
		defer cancel()
	}

	var observers []limiter.Observer
	var status *redislimiter.Limiter // reads the quota for the gauges
	if cfg.metrics != "" {
		reg := prometheus.NewRegistry()
		m, err := prommetrics.New(reg)
		if err != nil {
			return err
		}
		if status, err = newLimiter(client, cfg.key, cfg.limit.Limit); err != nil {
			return err
		}
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			prommetrics.NewQuotaCollector(cfg.key, func(ctx context.Context) (prommetrics.QuotaState, error) {
				st, err := status.Status(ctx)
				return prommetrics.QuotaState{Limit: cfg.limit.Limit, Used: st.Used, Queued: st.Queued}, err
			}))
		observers = append(observers, m.Observer(cfg.key))
		stopMetrics, err := serveMetrics(ctx, cfg.metrics, reg, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	rep := &reporter{w: stdout, on: cfg.report}
	var granted, waiting, cancelled, failed atomic.Int64
	health := &redisHealth{log: log, key: cfg.key}
	observers = append(observers, limiter.ObserverFunc(func(e limiter.Event) {
		switch e.Kind {
		case limiter.EventGrant:
			health.ok()
		case limiter.EventCancel:
			cancelled.Add(1)
		case limiter.EventError:
			failed.Add(1)
			health.failed(e.Err)
		case limiter.EventLimitLowered, limiter.EventLimitRestored, limiter.EventLimitsDiffer:
			log.Warn(e.Kind.String(), "key", e.Key, "limit", e.Limit.String())
		}
	}))
	if cfg.summary > 0 {
		go summarize(ctx, log, cfg.key, cfg.summary, &granted, &waiting, &failed)
	}

	log.Info("worker starting", "redis", redact(cfg.redisURL), "key", cfg.key, "limit", cfg.limit.String(), "workers", cfg.workers, "task", cfg.task.String())
	rep.line("ready")
	var wg sync.WaitGroup
	for w := range cfg.workers {
		obs := append([]limiter.Observer{limiter.ObserverFunc(func(e limiter.Event) {
			if e.Kind == limiter.EventGrant {
				granted.Add(1)
				rep.line("grant %d %d", w, e.At.UnixMicro())
			}
		})}, observers...)
		l, err := newLimiter(client, cfg.key, cfg.limit.Limit, redislimiter.WithObserver(limiter.Observers(obs...)))
		if err != nil {
			return err
		}
		if w == 0 {
			if err := l.Load(ctx); err != nil {
				return usagef("%v", err)
			}
		}
		e := executor.New(l)
		wg.Go(func() {
			for ctx.Err() == nil {
				rep.line("ask %d", w)
				waiting.Add(1)
				err := e.Execute(ctx, func(ctx context.Context) error {
					waiting.Add(-1)
					return clock.Sleep(ctx, cfg.task)
				})
				if err != nil {
					waiting.Add(-1) // never started: it left the queue
				}
				switch {
				case err == nil || ctx.Err() != nil:
				case errors.Is(err, context.DeadlineExceeded):
					// The next grant would come after this worker stops:
					// nothing more can be done before then.
					rep.line("done %d", w)
					return
				default:
					_ = clock.Sleep(ctx, 100*time.Millisecond) // Redis failing: do not spin
				}
			}
			rep.line("done %d", w)
		})
	}
	wg.Wait()
	rep.line("calls %d", calls.Load())
	log.Info("worker stopped", "granted", granted.Load(), "reservations_given_back", cancelled.Load(), "redis_errors", failed.Load())
	return nil
}

// redisHealth logs when Redis starts failing and when it answers again,
// once each, naming the key.
type redisHealth struct {
	log   *slog.Logger
	key   string
	mu    sync.Mutex
	since time.Time // first failure of the current spell; zero when healthy
	errs  int
}

func (h *redisHealth) failed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs++
	if h.since.IsZero() {
		h.since = time.Now()
		h.log.Warn("redis failing", "key", h.key, "err", err)
	}
}

func (h *redisHealth) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.since.IsZero() {
		h.log.Info("redis recovered", "key", h.key, "after", time.Since(h.since).Round(time.Millisecond).String(), "errors", h.errs)
		h.since, h.errs = time.Time{}, 0
	}
}

// summarize logs one line every interval: units granted since the last
// line, callers waiting now, errors since the last line.
func summarize(ctx context.Context, log *slog.Logger, key string, every time.Duration, granted, waiting, failed *atomic.Int64) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastGranted, lastFailed int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g, f := granted.Load(), failed.Load()
			log.Info("summary", "key", key, "granted", g-lastGranted, "waiting", waiting.Load(), "errors", f-lastFailed, "every", every.String())
			lastGranted, lastFailed = g, f
		}
	}
}

// reporter writes the demo's event lines, one at a time.
type reporter struct {
	mu sync.Mutex
	w  io.Writer
	on bool
}

func (r *reporter) line(format string, args ...any) {
	if !r.on {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, format+"\n", args...)
}

// serveMetrics serves reg at addr/metrics until ctx ends or stop is called.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usagef("--metrics %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}
