package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

var errHelp = errors.New("help shown")

// flags is a command's flag set: errors are reported in one line, and the
// usage is printed only for --help, to stdout.
type flags struct {
	*flag.FlagSet
	name, summary string
	stdout        io.Writer
}

func newFlags(name, summary string, stdout io.Writer) *flags {
	fs := flag.NewFlagSet("ratelimit "+name, flag.ContinueOnError)
	fs.Usage = func() {} // a mistake is one line (see parse), not the usage
	fs.SetOutput(io.Discard)
	return &flags{FlagSet: fs, name: name, summary: summary, stdout: stdout}
}

// parse parses args; a usage mistake becomes a usageError, --help errHelp.
func parse(fs *flags, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(fs.stdout, "usage: ratelimit %s [flags]\n\n%s\n\nflags:\n", fs.name, fs.summary)
		fs.SetOutput(fs.stdout)
		fs.PrintDefaults()
		return errHelp
	case err != nil:
		return usagef("%v (see --help)", err)
	case fs.NArg() > 0:
		return usagef("unexpected argument %q (see --help)", fs.Arg(0))
	}
	return nil
}

// redisFlag adds --redis: a Redis URL, $REDIS_URL by default (else the
// local default port). Its help never shows the default's password.
func redisFlag(fs *flags, what string) *string {
	return fs.String("redis", "", what+", redis://[user:password@]host:port[/db] or rediss://; default $REDIS_URL, else "+localRedis)
}

const localRedis = "redis://127.0.0.1:6379/0"

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

// redisURL is the URL given, else $REDIS_URL, else the local default port.
func redisURL(given string) string {
	if given != "" {
		return given
	}
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return localRedis
}

// redact hides a password in a Redis URL, for messages and logs, whether
// or not the URL parses. Of a URL that does not parse it keeps the scheme
// and what follows the last '@', and hides all between: where the password
// ends cannot be known.
func redact(raw string) string {
	// A URL whose every '@' ends its user-info: url.Redacted knows what the
	// password is. Any other '@' (in a path, a fragment, or with no
	// user-info parsed) makes it a guess: hide the lot.
	if u, err := url.Parse(raw); err == nil && (u.User != nil || !strings.Contains(raw, "@")) &&
		!strings.Contains(u.Opaque+u.Path+u.RawQuery+u.Fragment, "@") {
		return hide(u.Redacted(), raw)
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "xxxxx@" + rest[at+1:]
	}
	if ok {
		return scheme + "://" + rest
	}
	return rest
}

// urlProblems name what is wrong with a --redis value, by what the error
// says, in words that quote none of it: url.Parse's errors (first) and
// go-redis's quote the URL, password and all.
var urlProblems = []struct{ says, words string }{
	{"invalid URL escape", "a bad %-escape (write a % in a password as %25)"},
	{"invalid character", "a character a URL cannot hold (escape it: a space as %20)"},
	{"invalid port", "a port that is not a number"},
	{"missing ']'", "a broken IPv6 address"},
	{"IPv6", "a broken IPv6 address"},
	{"invalid URL scheme", "the scheme must be redis:// or rediss://"},
	{"invalid database", "the database must be a number, as in /0"},
	{"unexpected option", "an option go-redis does not accept"},
}

// urlProblem says what is wrong with a --redis value, quoting none of it.
func urlProblem(err error) string {
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	for _, p := range urlProblems {
		if strings.Contains(msg, p.says) {
			return p.words
		}
	}
	if ue != nil {
		return "not a URL"
	}
	return "not a Redis URL"
}

// hide replaces every form of rawURL's secret in s (the user-info's
// password, or a lone user that may be a token, as written,
// percent-decoded, or quoted as %q writes it) with "xxxxx". It works on
// URLs that do not parse: it only looks for the last '@' of the authority.
func hide(s, rawURL string) string {
	for _, secret := range secrets(rawURL) {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "xxxxx")
		}
	}
	return s
}

func secrets(rawURL string) []string {
	rest := rawURL
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return nil
	}
	userinfo := rest[:at]
	pw := userinfo
	if _, p, ok := strings.Cut(userinfo, ":"); ok {
		pw = p
	}
	forms := []string{pw}
	if dec, err := url.PathUnescape(pw); err == nil {
		forms = append(forms, dec)
	}
	for _, f := range forms[:len(forms):len(forms)] {
		q := strconv.Quote(f)
		forms = append(forms, q[1:len(q)-1], url.QueryEscape(f), url.PathEscape(f))
	}
	// Longest first, so a form is never left half-replaced by a shorter one.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return forms
}

// connect opens a client for a redis:// or rediss:// URL and checks that
// the server answers; failures are usage errors that never show a password.
func connect(ctx context.Context, rawURL string) (*goredis.Client, error) {
	shown := redact(rawURL)
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		return nil, usagef("bad --redis URL %s: %s; want redis://[user:password@]host:port[/db] or rediss://...", shown, urlProblem(err))
	}
	c := goredis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, connectError(err, opts, shown, rawURL)
	}
	return c, nil
}

// connectError says in one line what failed, and what to do.
func connectError(err error, opts *goredis.Options, shown, rawURL string) error {
	msg := hide(err.Error(), rawURL)
	tls := opts.TLSConfig != nil
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "invalid password"),
		strings.Contains(msg, "invalid username-password"):
		return usagef("authentication failed at %s: %s; check the user and password in --redis", shown, msg)
	case strings.Contains(msg, "DB index is out of range"), strings.Contains(msg, "invalid DB index"):
		return usagef("Redis at %s has no database %d: %s; pick one it has (0 to 15 by default)", shown, opts.DB, msg)
	case tls && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || strings.Contains(msg, "tls:") || strings.Contains(msg, "i/o timeout")):
		return usagef("TLS with %s failed: %s; is that port TLS? use redis:// for a plain one", shown, msg)
	case !tls && (errors.Is(err, io.EOF) || strings.Contains(msg, "connection reset")):
		return usagef("Redis at %s closed the connection: %s; if that port is TLS, use rediss://", shown, msg)
	}
	return usagef("cannot reach Redis at %s: %s; start one (make up) or pass --redis", shown, msg)
}

// newLimiter builds the Redis limiter, turning config errors into usage errors.
func newLimiter(c goredis.Scripter, key string, limit limiter.Limit, opts ...redislimiter.Option) (*redislimiter.Limiter, error) {
	l, err := redislimiter.New(c, key, limit, opts...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return l, nil
}
