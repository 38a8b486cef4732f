package descope

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// DefaultBackoff is how long Descope blocks after a breach, used when a 429
// carries no Retry-After.
const DefaultBackoff = 60 * time.Second

// MaxRetryAfter is the longest wait a Retry-After is believed for: a larger
// value (or one that would overflow a time.Duration) is cut to it.
const MaxRetryAfter = 24 * time.Hour

// RetryAfter reads a Retry-After header value: whole seconds, or an HTTP
// date (counted from now), at most MaxRetryAfter. Empty or unreadable:
// DefaultBackoff.
func RetryAfter(header string, now time.Time) time.Duration {
	header = strings.TrimSpace(header)
	if secs, err := strconv.ParseUint(header, 10, 64); err == nil {
		return time.Duration(min(secs, uint64(MaxRetryAfter/time.Second))) * time.Second
	}
	if _, err := strconv.ParseInt(header, 10, 64); err == nil {
		return DefaultBackoff // negative: unreadable
	}
	if isDigits(header) {
		return MaxRetryAfter // too many digits for 64 bits
	}
	if at, err := http.ParseTime(header); err == nil {
		return min(max(0, at.Sub(now)), MaxRetryAfter)
	}
	return DefaultBackoff
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// ErrorRetryAfter is a classifier for executor.WithRetryAfter that reads the
// Descope SDK's rate-limit error: a *descope.Error (or descope.Error) with
// code E130429 or C020003, whose Info["Retry-After"] holds whole seconds.
// It reads the error's fields by name, so this module need not import the
// SDK; without a Retry-After it answers DefaultBackoff.
func ErrorRetryAfter(err error) (time.Duration, bool) {
	if err == nil {
		return 0, false
	}
	if d, ok := sdkRetryAfter(err); ok {
		return d, true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return ErrorRetryAfter(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if d, ok := ErrorRetryAfter(e); ok {
				return d, true
			}
		}
	}
	return 0, false
}

// sdkRetryAfter reads err itself if it has the shape of descope.Error.
func sdkRetryAfter(err error) (time.Duration, bool) {
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 0, false
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct || v.Type().Name() != "Error" {
		return 0, false
	}
	code := v.FieldByName("Code")
	if !code.IsValid() || code.Kind() != reflect.String || (code.String() != "E130429" && code.String() != "C020003") {
		return 0, false
	}
	info := v.FieldByName("Info")
	if info.IsValid() && info.Kind() == reflect.Map && info.Type().Key().Kind() == reflect.String {
		if ra := info.MapIndex(reflect.ValueOf("Retry-After")); ra.IsValid() {
			switch x := ra.Interface().(type) {
			case int:
				return RetryAfter(strconv.Itoa(x), time.Now()), true
			case float64:
				if x != x || x < 0 { // NaN or negative
					return DefaultBackoff, true
				}
				return time.Duration(min(x, MaxRetryAfter.Seconds()) * float64(time.Second)), true
			case string:
				return RetryAfter(x, time.Now()), true
			}
		}
	}
	return DefaultBackoff, true
}
