package executor_test

import (
	"context"
	"fmt"

	"github.com/descope-mgmt/ratelimit/executor"
	"github.com/descope-mgmt/ratelimit/limiter"
	"github.com/descope-mgmt/ratelimit/limiter/memory"
)

func ExampleBatch() {
	l, err := memory.New(limiter.PerMinute(100))
	if err != nil {
		panic(err)
	}
	e := executor.New(l, executor.WithStopOnError(false), executor.WithConcurrency(4))
	create := func(name string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			if name == "" {
				return "", fmt.Errorf("empty name")
			}
			return "created " + name, nil
		}
	}
	results, err := executor.Batch(context.Background(), e, []func(context.Context) (string, error){
		create("ada"), create(""), create("grace"),
	})
	for _, r := range results {
		fmt.Printf("%q %v\n", r.Value, r.Err)
	}
	fmt.Println(err)
	// Output:
	// "created ada" <nil>
	// "" empty name
	// "created grace" <nil>
	// executor: task 1: empty name
}

func ExampleDo() {
	l, err := memory.New(limiter.PerSecond(10))
	if err != nil {
		panic(err)
	}
	e := executor.New(l)
	id, err := executor.Do(context.Background(), e, func(ctx context.Context) (int, error) {
		return 42, nil // call the rate-limited API here
	})
	fmt.Println(id, err)
	// Output: 42 <nil>
}
