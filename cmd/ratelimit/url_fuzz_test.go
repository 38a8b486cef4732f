package main

import (
	"context"
	"errors"
	"net/url"
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
