package redis

// DecodeAnswers decodes window.lua's answer to a reserve of k requests
// into four values per request (granted 1|0|-1, wait µs, at µs,
// remaining), as the script gave them before run-length encoding, then
// the values that follow: for tests that compare the script with its Go
// twin.
func DecodeAnswers(vals []int64, k int) ([]int64, error) {
	rs, rest, err := decodeAnswers(vals, k)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, r := range rs {
		granted := int64(0)
		switch {
		case r.granted:
			granted = 1
		case r.full:
			granted = -1
		}
		out = append(out, granted, r.wait.Microseconds(), r.at, int64(r.remaining))
	}
	return append(out, rest...), nil
}
