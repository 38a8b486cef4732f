package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/descope"
	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
	"github.com/descope-mgmt/ratelimit/scripts/lua"
)

// TestMain lets the test binary stand in for ratelimit when the demo (or a
// test) starts it as "worker".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		main()
	}
	goredis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDemoEndToEnd(t *testing.T) {
	dir := t.TempDir()
	record, page := filepath.Join(dir, "grants.txt"), filepath.Join(dir, "chart.html")
	code, out, errOut := runCmd(t, "demo", "--replicas", "2", "--workers", "3", "--limit", "5/500ms", "--duration", "2s",
		"--task", "5ms", "--record", record, "--html", page)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	t.Logf("figures: demo output:\n%s", out)

	// Check the verdict against the grant times the demo recorded, counted
	// here without the demo's code.
	data, err := os.ReadFile(record)
	require.NoError(t, err)
	var times []int64
	for line := range strings.Lines(string(data)) {
		var r, w int
		var at int64
		_, err := fmt.Sscanf(line, "%d %d %d", &r, &w, &at)
		require.NoError(t, err)
		times = append(times, at)
	}
	require.NotEmpty(t, times)
	slices.Sort(times)
	most := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j] < times[i]+500_000; j++ {
			n++
		}
		most = max(most, n)
	}
	assert.LessOrEqual(t, most, 5, "no window over the limit")
	assert.Contains(t, out, fmt.Sprintf("busiest window:  %d in 500ms (limit 5)", most))
	assert.Contains(t, out, fmt.Sprintf("grants:          %d in", len(times)))
	assert.Contains(t, out, "verdict:         PASS")
	// The chart: the grants in the 500ms window ending at each time, one
	// symbol per grant, never past the limit's mark.
	rows := regexp.MustCompile(`(?m)^\s+[0-9.]+s \| ([AB]*)[ |]* (\d+)$`).FindAllStringSubmatch(out, -1)
	require.NotEmpty(t, rows, "a chart")
	highest := 0
	for _, row := range rows {
		n, err := strconv.Atoi(row[2])
		require.NoError(t, err)
		assert.Len(t, row[1], n, "one symbol per grant at this scale")
		assert.LessOrEqual(t, n, 5, "no bar past the limit")
		highest = max(highest, n)
	}
	assert.LessOrEqual(t, highest, most, "a bar counts one window")
	html, err := os.ReadFile(page)
	require.NoError(t, err)
	assert.Contains(t, string(html), "<svg")
	assert.Contains(t, string(html), "PASS: no 500ms window held more than 5")
	assert.NotContains(t, string(html), "http://"+"cdn", "self-contained")
}

func TestStatusPrintsTheQuota(t *testing.T) {
	m := miniredis.RunT(t)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetTime(now)
	c := goredis.NewClient(&goredis.Options{Addr: m.Addr()})
	defer c.Close()
	l, err := redislimiter.New(c, "q", limiter.PerMinute(5))
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, l.Acquire(ctx, 3))
	m.SetTime(now.Add(20 * time.Second))

	code, out, errOut := runCmd(t, "status", "--redis", "redis://"+m.Addr(), "--key", "q")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "limit 5/1m", "the limit stored in the key")
	assert.Contains(t, out, "used in window:  3 of 5")
	assert.Contains(t, out, "queued:          0 units")
	assert.Contains(t, out, "next unit free:  now")

	require.NoError(t, l.Acquire(ctx, 2))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = l.Acquire(wctx, 1) }() // queued at +60s
	require.Eventually(t, func() bool {
		_, out, _ = runCmd(t, "status", "--redis", "redis://"+m.Addr(), "--key", "q")
		return strings.Contains(out, "queued:          1 units")
	}, 5*time.Second, 5*time.Millisecond)
	assert.Contains(t, out, "used in window:  5 of 5")
	assert.Contains(t, out, "next unit free:  in 40s", "the first three leave at +60s; it is +20s")
	assert.NotContains(t, out, "learned limit")

	// A descope.Transport lowered the limit after a 429: status says so.
	require.NoError(t, c.Set(ctx, descope.LearnedKey("q"), 4, time.Hour).Err())
	_, out, _ = runCmd(t, "status", "--redis", "redis://"+m.Addr(), "--key", "q")
	assert.Contains(t, out, "learned limit:   4 per 1m0s, lowered after the API answered 429 to a request within the limit; expires in 1h0m0s")
}

func TestWorkerGivesBackItsReservationOnSIGTERM(t *testing.T) {
	m := miniredis.RunT(t)
	c := goredis.NewClient(&goredis.Options{Addr: m.Addr()})
	defer c.Close()
	l, err := redislimiter.New(c, "q", limiter.PerHour(1))
	require.NoError(t, err)
	require.NoError(t, l.Acquire(t.Context(), 1)) // full for an hour

	cmd := exec.Command(os.Args[0], "worker", "--redis", "redis://"+m.Addr(), "--key", "q", "--limit", "1/1h", "--workers", "1")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool {
		st, err := l.Status(t.Context())
		return err == nil && st.Queued == 1
	}, 10*time.Second, 10*time.Millisecond, "the worker's goroutine reserves the unit an hour away")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), logs.String())
	st, err := l.Status(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 0, st.Queued, "the reservation was given back")
	assert.Contains(t, logs.String(), "reservations_given_back=1")
}

func TestWorkerServesMetrics(t *testing.T) {
	m := miniredis.RunT(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"worker", "--redis", "redis://" + m.Addr(), "--key", "q", "--limit", "5/1h",
			"--workers", "2", "--task", "1ms", "--metrics", addr}, io.Discard, io.Discard)
	}()
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `ratelimit_granted_units_total{limiter="q"} 5`)
	}, 10*time.Second, 20*time.Millisecond, "five units of 5/1h granted")
	assert.Contains(t, body, `ratelimit_wait_seconds_count{limiter="q"} 5`)
	// The quota's gauges, read at the scrape, and the Go and process collectors.
	assert.Contains(t, body, `ratelimit_quota_limit_units{quota="q"} 5`)
	assert.Contains(t, body, `ratelimit_quota_window_seconds{quota="q"} 3600`)
	assert.Contains(t, body, `ratelimit_quota_used_units{quota="q"} 5`)
	assert.Regexp(t, `ratelimit_quota_queued_units\{quota="q"\} [0-2]\n`, body, "the two workers wait, queued an hour out")
	assert.Contains(t, body, "go_goroutines ")
	assert.Contains(t, body, "process_cpu_seconds_total ")
	cancel()
	assert.Equal(t, 0, <-done)
}

// The worker says when Redis fails and when it answers again, naming the
// key, and logs a one-line summary at its interval.
func TestWorkerLogsRedisFailingAndRecovering(t *testing.T) {
	m := miniredis.RunT(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"worker", "--redis", "redis://" + m.Addr(), "--key", "q", "--limit", "50/1s",
			"--workers", "2", "--task", "5ms", "--summary-interval", "100ms"}, io.Discard, &logs)
	}()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "msg=summary key=q granted=") }, 5*time.Second, 10*time.Millisecond)
	m.Close()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `msg="redis failing" key=q`) }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, m.Restart())
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `msg="redis recovered" key=q`) }, 10*time.Second, 10*time.Millisecond)
	cancel()
	assert.Equal(t, 0, <-done)
	assert.Equal(t, 1, strings.Count(logs.String(), "redis failing"), "once per spell, not once per error")
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBadInputIsOneLineAndExitCode2(t *testing.T) {
	m := miniredis.RunT(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"worker", "--limit", "ten/1s"}, `requests "ten"`},
		{[]string{"worker", "--limit", "0/1s"}, "requests=0"},
		{[]string{"worker", "--workers", "0", "--redis", "redis://" + m.Addr()}, "--workers=0"},
		{[]string{"status", "--redis", "mysql://x"}, "bad --redis URL"},
		{[]string{"status", "--redis", "redis://user:hunter2@127.0.0.1:1"}, "cannot reach Redis at redis://user:xxxxx@127.0.0.1:1"},
		{[]string{"demo", "--replicas", "0"}, "--replicas=0"},
		{[]string{"demo", "--html", "/nonexistent/dir/chart.html"}, "--html /nonexistent/dir/chart.html: cannot write there"},
		{[]string{"demo", "--record", "/nonexistent/dir/grants.txt"}, "--record /nonexistent/dir/grants.txt: cannot write there"},
		{[]string{"status", "extra"}, `unexpected argument "extra"`},
		{[]string{"status", "--interval", "soon"}, `invalid value "soon" for flag -interval`},
		{[]string{"status", "--redis", "redis://:100%hunter2@127.0.0.1:1"}, "bad --redis URL redis://xxxxx@127.0.0.1:1: a bad %-escape (write a % in a password as %25)"},
		{[]string{"status", "--redis", "redis://:hunter2 x@127.0.0.1:1"}, "bad --redis URL redis://xxxxx@127.0.0.1:1: not a URL"},
		{[]string{"status", "--redis", "redis://u:hunter2@127.0.0.1:port"}, "bad --redis URL redis://xxxxx@127.0.0.1:port: a port that is not a number"},
		{[]string{"status", "--redis", "redis://u:hunter2@[::1:1"}, "bad --redis URL redis://xxxxx@[::1:1: a broken IPv6 address"},
		{[]string{"nonsense"}, `unknown command "nonsense"`},
	} {
		code, out, errOut := runCmd(t, tc.args...)
		assert.Equal(t, 2, code, "%v", tc.args)
		assert.Contains(t, errOut, tc.want, "%v", tc.args)
		assert.NotContains(t, errOut+out, "hunter2", "a password is never printed")
		if tc.args[0] != "nonsense" {
			assert.Empty(t, out, "no usage on a mistake: %v", tc.args)
		}
		assert.NotContains(t, errOut, "goroutine", "no stack trace")
		if tc.args[0] != "nonsense" {
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
		}
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://u:hunter2@example:6379")
	for _, cmd := range []string{"demo", "worker", "status", "load"} {
		code, out, _ := runCmd(t, cmd, "--help")
		assert.Equal(t, 0, code, cmd)
		assert.Contains(t, out, "usage: ratelimit "+cmd, cmd)
		assert.Contains(t, out, "-redis", cmd)
		assert.Contains(t, out, "default $REDIS_URL", cmd)
		assert.NotContains(t, out, `(default "redis`, "one default, said once: "+cmd)
		assert.NotContains(t, out, "hunter2", cmd)
	}
}

// An operator loads the function library once, and a limiter whose ACL
// may call functions but not load them then runs window.lua as one;
// where the server has no functions, load says so and loads the script.
func TestLoadLetsALimiterThatMayNotLoadRunAFunction(t *testing.T) {
	srv := redistest.Start(t)
	code, out, errOut := runCmd(t, "load", "--redis", "redis://"+srv.Addr)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "loaded: function library "+lua.Function)

	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer admin.Close()
	ctx := t.Context()
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "worker", "on", ">pw", "~ratelimit:*", "-@all",
		"+fcall", "+time", "+getrange", "+setrange", "+set", "+pexpire", "+ping", "+hello").Err())
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, Username: "worker", Password: "pw"})
	defer c.Close()
	l, err := redislimiter.New(c, "ratelimit:{p}:q", limiter.PerMinute(2))
	require.NoError(t, err)
	for want := 1; want >= 0; want-- {
		d, err := l.TryAcquire(ctx, 1)
		require.NoError(t, err, "FCALL alone: no script, no FUNCTION LOAD")
		assert.Equal(t, limiter.Decision{Allowed: true, Remaining: want}, d)
	}

	m := miniredis.RunT(t)
	code, out, errOut = runCmd(t, "load", "--redis", "redis://"+m.Addr())
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "as a script")
}

// Each way a connection fails gets its own one line, with the fix.
func TestConnectionFailuresSayWhatHappened(t *testing.T) {
	auth := miniredis.RunT(t)
	auth.RequireUserAuth("u", "right-password")
	plain := miniredis.RunT(t)
	tlsSrv := miniredis.NewMiniRedis()
	require.NoError(t, tlsSrv.StartTLS(selfSigned(t)))
	t.Cleanup(tlsSrv.Close)
	for _, tc := range []struct{ url, want string }{
		{"redis://u:hunter2@" + auth.Addr(), "authentication failed at redis://u:xxxxx@" + auth.Addr()},
		{"redis://" + auth.Addr(), "authentication failed"},
		{"redis://" + redistest.Start(t).Addr + "/99", "has no database 99"}, // miniredis has every database
		{"rediss://" + plain.Addr(), "TLS with rediss://" + plain.Addr() + " failed"},
		{"redis://" + tlsSrv.Addr(), "closed the connection"},
		{"redis://127.0.0.1:1", "cannot reach Redis at redis://127.0.0.1:1"},
	} {
		code, out, errOut := runCmd(t, "status", "--redis", tc.url)
		assert.Equal(t, 2, code, tc.url)
		assert.Contains(t, errOut, tc.want, tc.url)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
		assert.Empty(t, out)
		assert.NotContains(t, errOut, "hunter2")
	}
}

// A worker whose key has a learned limit beside it (a descope.Transport
// lowered it after a 429) says so and grants no more than it.
func TestWorkerUsesTheLearnedLimit(t *testing.T) {
	m := miniredis.RunT(t)
	c := goredis.NewClient(&goredis.Options{Addr: m.Addr()})
	defer c.Close()
	require.NoError(t, c.Set(t.Context(), descope.LearnedKey("q"), 3, time.Hour).Err())
	code, _, errOut := runCmd(t, "worker", "--redis", "redis://"+m.Addr(), "--key", "q", "--limit", "10/1h", "--workers", "4", "--task", "1ms", "--duration", "500ms")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "using the learned limit stored beside the key")
	assert.Contains(t, errOut, "learned=3 configured=10")
	assert.Contains(t, errOut, "granted=3 ", "3 per hour, not 10")
}

// status cannot be fooled: a wrong --limit, a missing key, a key that is
// not a quota and replicas that disagree each get their own message.
func TestStatusSaysWhatIsWrong(t *testing.T) {
	m := miniredis.RunT(t)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m.SetTime(now)
	c := goredis.NewClient(&goredis.Options{Addr: m.Addr()})
	defer c.Close()
	ctx := t.Context()
	url := "redis://" + m.Addr()
	ten, err := redislimiter.New(c, "q", limiter.PerSecond(10))
	require.NoError(t, err)
	require.NoError(t, ten.Acquire(ctx, 10))

	code, out, errOut := runCmd(t, "status", "--redis", url, "--key", "q", "--limit", "1/1s")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "--limit 1/1s is not the limit stored in the key (10/1s)")

	code, _, errOut = runCmd(t, "status", "--redis", url, "--key", "typo")
	assert.Equal(t, 1, code)
	assert.Equal(t, "ratelimit status: no quota at key typo: it was never used, it expired a window after its last grant, or the key is mistyped\n", errOut)

	require.NoError(t, c.Set(ctx, "s", "unrelated", 0).Err())
	require.NoError(t, c.HSet(ctx, "h", "f", "v").Err())
	code, _, errOut = runCmd(t, "status", "--redis", url, "--key", "s")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "key s is not a quota: limiter/redis: not a quota: key s holds 9 bytes that this script did not write")
	code, _, errOut = runCmd(t, "status", "--redis", url, "--key", "h")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "key h is not a quota: limiter/redis: not a quota: key h holds a hash, not a string")
	assert.NotContains(t, errOut, "WRONGTYPE")

	other, err := redislimiter.New(c, "q", limiter.Limit{Requests: 10, Window: 10 * time.Second})
	require.NoError(t, err)
	m.SetTime(now.Add(time.Second))
	_, err = other.TryAcquire(ctx, 1) // denied, but the key learns of its limit
	require.NoError(t, err)
	_, out, _ = runCmd(t, "status", "--redis", url, "--key", "q")
	assert.Contains(t, out, "replicas differ: a replica found other limits stored at")
	assert.Contains(t, out, "stored now: 10/10s")
}

// selfSigned returns a server TLS config with a fresh self-signed
// certificate for 127.0.0.1.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
