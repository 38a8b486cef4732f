// Command ratelimit shows replicas sharing one quota, runs a replica, and
// reads a quota's state.
//
//	ratelimit demo     replicas (processes) sharing one quota, with a chart and a verdict
//	ratelimit worker   one long-running replica
//	ratelimit status   read a quota without consuming it
//	ratelimit load     load window.lua into Redis as a function library
//
// Run "ratelimit <command> --help" for each command's flags. Exit codes: 0
// success, 1 the demo saw a window over the limit or a command failed while
// running, 2 bad usage or an unreachable Redis.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	goredis "github.com/redis/go-redis/v9"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func main() {
	// go-redis logs connection failures on its own; every error reaches the
	// user through run, in one line.
	goredis.SetLogger(quietLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: ratelimit <command> [flags]

commands:
  demo     run replicas (processes) sharing one quota and show what they did
  worker   run one replica: workers acquiring from a shared quota in Redis
  status   read a quota's state without consuming it
  load     load window.lua into Redis as a function library (an operator's step)

Run 'ratelimit <command> --help' for the command's flags.
`

// usageError is a mistake the user can fix: exit code 2, one line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// failedError says the command ran and saw a failure: exit code 1.
type failedError struct{ msg string }

func failedf(format string, args ...any) error { return failedError{fmt.Sprintf(format, args...)} }

func (e failedError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, stderr)
	case "worker":
		err = runWorker(ctx, args[1:], stdout, stderr)
	case "status":
		err = runStatus(ctx, args[1:], stdout, stderr)
	case "load":
		err = runLoad(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ratelimit: unknown command %q\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	var fe failedError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ratelimit %s: %v\n", args[0], err)
		return 2
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "ratelimit %s: %v\n", args[0], err)
		return 1
	default:
		fmt.Fprintf(stderr, "ratelimit %s: %v\n", args[0], err)
		return 1
	}
}
