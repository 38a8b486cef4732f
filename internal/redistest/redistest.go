// Package redistest starts real redis-server processes for tests, on free
// loopback ports, and removes them when the test ends. It never touches a
// server it did not start, except the one named by REDIS_ADDR, where tests
// use random keys and never flush.
//
// When no redis-server binary is on the PATH, tests that need one are
// skipped with a message, unless REQUIRE_REDIS=1, when they fail.
package redistest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// go-redis logs connection failures through its global logger; the tests
// cause many on purpose, and a passing run should print none. REDIS_LOGS=1
// keeps them.
func init() {
	if os.Getenv("REDIS_LOGS") != "1" {
		goredis.SetLogger(quietLogger{})
	}
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// Binary returns the path of redis-server, or skips t (fails it when
// REQUIRE_REDIS=1) if there is none.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("REQUIRE_REDIS") == "1" {
			t.Fatalf("REQUIRE_REDIS=1 but no redis-server on the PATH: %v", err)
		}
		t.Skip("no redis-server on the PATH: install it (apt-get install redis-server) or set REDIS_ADDR to run this test")
	}
	return path
}

// Addr returns the address of a real Redis for t: REDIS_ADDR when set, else
// a fresh server started for t alone.
func Addr(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv("REDIS_ADDR"); addr != "" {
		return addr
	}
	return Start(t).Addr
}

// Client returns a client for Addr(t), closed when t ends.
func Client(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: Addr(t), PoolSize: 128})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Key returns a key no other test uses. On a shared server (REDIS_ADDR) it
// is deleted when t ends, so tests leave nothing behind.
func Key(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	key := "ratelimit-test:" + t.Name() + ":" + hex.EncodeToString(b[:])
	if addr := os.Getenv("REDIS_ADDR"); addr != "" {
		t.Cleanup(func() {
			c := goredis.NewClient(&goredis.Options{Addr: addr})
			defer c.Close()
			_ = c.Del(context.Background(), key).Err()
		})
	}
	return key
}

// Server is a redis-server process started by [Start].
type Server struct {
	Addr string
	Port int
	Dir  string // its working directory

	t        testing.TB
	args     []string
	sentinel string // config of a sentinel; empty for a server
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has been waited for
	out      *bytes.Buffer
}

// Start starts a redis-server on a free loopback port with no persistence
// and stops it when t ends. Extra arguments are passed to it as they are.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return startServer(t, &Server{t: t, Dir: t.TempDir(), args: args})
}

// StartSentinel starts a Sentinel that monitors master as "mymaster", with
// a quorum of 2 and a master considered down after one second.
func StartSentinel(t testing.TB, master *Server) *Server {
	t.Helper()
	conf := fmt.Sprintf("sentinel monitor mymaster 127.0.0.1 %d 2\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\nsentinel parallel-syncs mymaster 1\n", master.Port)
	return startServer(t, &Server{t: t, Dir: t.TempDir(), sentinel: conf})
}

func startServer(t testing.TB, s *Server) *Server {
	t.Helper()
	bin := Binary(t)
	var err error
	for range 5 { // a free port can be taken between probe and bind
		s.Port = FreePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		if err = s.start(bin); err == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", err)
	return nil
}

func (s *Server) start(bin string) error {
	args := append([]string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.Dir, "--daemonize", "no",
	}, s.args...)
	if s.sentinel != "" { // a sentinel takes its (writable) config file first
		conf := filepath.Join(s.Dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte(s.sentinel), 0o644); err != nil {
			return err
		}
		args = []string{conf, "--sentinel", "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.Dir}
	}
	cmd := exec.Command(bin, args...)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if err := waitReady(s.Addr, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w; output:\n%s", err, out.String())
	}
	s.mu.Lock()
	s.cmd, s.exited, s.out = cmd, done, out
	s.mu.Unlock()
	return nil
}

func waitReady(addr string, exited <-chan struct{}) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited", addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s not ready after 10s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL), as a crash would. It is safe to
// call more than once.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same port after Kill. With no
// persistence it comes back empty, like a restart that lost its data.
func (s *Server) Restart() {
	s.t.Helper()
	bin := Binary(s.t)
	if err := s.start(bin); err != nil {
		s.t.Fatalf("redistest: restart redis-server on %s: %v", s.Addr, err)
	}
}

// FreePort returns a loopback port that is free now, and whose cluster bus
// port (port+10000) is free too.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("redistest: no free port pair found")
	return 0
}

// Private reports whether Addr gives each test a server of its own, where a
// test may run commands that affect the whole server (SCRIPT FLUSH, CONFIG).
func Private() bool { return os.Getenv("REDIS_ADDR") == "" }
