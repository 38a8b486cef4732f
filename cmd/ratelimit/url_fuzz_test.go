package main

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// FuzzRedisURL: any --redis value parses or fails without a panic, and
// redact never shows a password. Only parsed: nothing is dialled.
func FuzzRedisURL(f *testing.F) {
	for _, s := range []string{"redis://127.0.0.1:1", "rediss://u:p@h:1/0", "redis://:pw@[::1]:1/3", "mysql://x", "", "redis://%zz", "redis://u:sekret@h:1/99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, _ = goredis.ParseURL(raw)
		shown := redact(raw)
		if u, err := url.Parse(raw); err == nil {
			if p, ok := u.User.Password(); ok && len(p) >= 4 && strings.Contains(shown, p) && !strings.Contains(u.Redacted(), p) {
				t.Fatalf("redact(%q) = %q shows the password", raw, shown)
			}
		}
	})
}

// FuzzRedisURLNeverShowsThePassword: a --redis value built around a
// password, parsable or not (a bad escape, a space, a bad port, a broken
// IPv6 literal), never shows the password, as written or as %q writes it,
// in what redact returns nor in connect's error. connect runs only on
// values that do not parse, so nothing is dialled.
func FuzzRedisURLNeverShowsThePassword(f *testing.F) {
	for _, seed := range [][3]string{
		{"", "100%secret", "127.0.0.1:1"}, {"u", "pass word", "127.0.0.1:1"}, {"u", "hunter22", "127.0.0.1:port"},
		{"u", "hunter22", "[::1:1"}, {"", "tab\tsecret", "h:1/0"}, {"a:b", "c@d@e", "h:1"}, {"u", "p/ss:w", "%zz"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, user, middle, rest string) {
		// The password carries marks no message has, so finding it in
		// one is a leak, not a coincidence.
		password := "Q7" + middle + "Z9"
		raw := "redis://" + user + ":" + password + "@" + rest
		visible := func(s string) bool {
			if strings.Contains("redis://"+user+":", password) || strings.Contains("@"+rest, password) {
				return false // also written outside the password: not a leak
			}
			q := strconv.Quote(password)
			return strings.Contains(s, password) || strings.Contains(s, q[1:len(q)-1])
		}
		if shown := redact(raw); visible(shown) {
			t.Fatalf("redact(%q) = %q shows the password", raw, shown)
		}
		if _, err := goredis.ParseURL(raw); err == nil {
			return // would dial: FuzzConnectFailure covers loopback
		}
		_, err := connect(t.Context(), raw)
		if err == nil || visible(err.Error()) {
			t.Fatalf("connect(%q): %v", raw, err)
		}
	})
}

// FuzzConnectFailure: connecting with any user, password and database to a
// loopback port where nothing listens is a usage error that never shows the
// password.
func FuzzConnectFailure(f *testing.F) {
	f.Add("u", "sekret", "0")
	f.Add("", "p@ss:w/rd", "99")
	f.Add("admin", "%zz", "x")
	f.Fuzz(func(t *testing.T, user, password, db string) {
		u := url.URL{Scheme: "redis", User: url.UserPassword(user, password), Host: "127.0.0.1:1", Path: "/" + db}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		c, err := connect(ctx, u.String())
		if err == nil {
			c.Close()
			t.Fatalf("connected to 127.0.0.1:1")
		}
		var ue usageError
		if !errors.As(err, &ue) {
			t.Fatalf("connect(%q): %v is not a usage error", u.Redacted(), err)
		}
		if len(password) >= 4 && strings.Contains(err.Error(), password) && !strings.Contains(u.Redacted(), password) {
			t.Fatalf("connect printed the password: %v", err)
		}
	})
}
