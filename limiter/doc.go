// Package limiter defines a sliding-window rate limiter that many processes
// can share, and the types every backend agrees on.
//
// A [Limit] says "at most Requests units in any window of length Window".
// Backends live in their own packages: [github.com/descope-mgmt/ratelimit/limiter/memory]
// keeps the state in one process, [github.com/descope-mgmt/ratelimit/limiter/redis]
// keeps it in Redis so that every replica of a worker shares one quota.
//
// # The reservation rule
//
// Both backends implement one rule, stated here once. A limiter remembers the
// grant times of the last window, and may hold grants in the future. A request
// for n units is given the earliest time at such that:
//
//  1. at is not earlier than now;
//  2. at is not earlier than the latest grant already made, so requests are
//     served first come, first served, across every replica;
//  3. no window of length Window ending at at holds more than Requests units,
//     counting the n new ones. A unit granted at t counts in every window
//     (at-Window, at] that contains t, so it stops counting at t+Window;
//  4. at is not inside a pause of the quota (see [Pauser]).
//
// A limiter over several quotas ([Quota]), or a quota with several limits,
// takes the earliest at that satisfies all of them and records the grant in
// every quota at that one time.
//
// Because grants never go back in time (rule 2), checking the one window that
// ends at at is enough: every later window is checked when its grant is made.
// With grants kept in order, rule 3 reduces to one lookup: the unit that is
// (Requests-n+1)-th newest must be at least Window old at time at.
//
// Acquire records the grant at at in the same atomic step that computes it,
// then sleeps until at. There is no polling: one round trip per grant however
// many callers wait. TryAcquire grants only when at is now; otherwise it
// records nothing and reports how long to wait.
//
// If the caller gives up while it waits (its context ends), it removes its own
// reservation, and only its own. Reservations made after it keep their times.
package limiter
