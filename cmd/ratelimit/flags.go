package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

var errHelp = errors.New("help shown")

// newFlags returns a flag set that reports errors instead of exiting, and
// prints its --help to stdout.
func newFlags(name, summary string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ratelimit "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "usage: ratelimit %s [flags]\n\n%s\n\nflags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args; a usage mistake becomes a usageError, --help errHelp.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // the error is reported in one line by run
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return errHelp
	case err != nil:
		return usagef("%v (see --help)", err)
	case fs.NArg() > 0:
		return usagef("unexpected argument %q (see --help)", fs.Arg(0))
	}
	return nil
}

// limitFlag is a limiter.Limit read as "requests/window".
type limitFlag struct{ limiter.Limit }

func (l *limitFlag) String() string { return l.Limit.String() }

func (l *limitFlag) Set(s string) error {
	v, err := limiter.ParseLimit(s)
	if err != nil {
		return err
	}
	l.Limit = v
	return nil
}

// defaultRedisURL is $REDIS_URL, else the local default port.
func defaultRedisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// redact hides a password in a Redis URL, for messages and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// connect opens a client for a redis:// or rediss:// URL and checks that
// the server answers; failures are usage errors that never show a password.
func connect(ctx context.Context, rawURL string) (*goredis.Client, error) {
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		return nil, usagef("bad --redis URL %s: %v; want redis://[user:password@]host:port[/db] or rediss://...", redact(rawURL), scrub(err, rawURL))
	}
	c := goredis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, usagef("cannot reach Redis at %s: %v; start one (make up) or pass --redis", redact(rawURL), scrub(err, rawURL))
	}
	return c, nil
}

// scrub removes the raw URL (and so its password) from an error's text.
func scrub(err error, rawURL string) string {
	msg := err.Error()
	if u, perr := url.Parse(rawURL); perr == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

// newLimiter builds the Redis limiter, turning config errors into usage errors.
func newLimiter(c goredis.Scripter, key string, limit limiter.Limit, opts ...redislimiter.Option) (*redislimiter.Limiter, error) {
	l, err := redislimiter.New(c, key, limit, opts...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return l, nil
}
