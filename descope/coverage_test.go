package descope_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/descope"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// sdkEndpoint is one row of testdata/sdk-endpoints.tsv.
type sdkEndpoint struct {
	function, method, path string
	quotas                 []string
}

func readSDKEndpoints(t *testing.T) []sdkEndpoint {
	f, err := os.Open("testdata/sdk-endpoints.tsv")
	require.NoError(t, err)
	defer f.Close()
	var rows []sdkEndpoint
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "function\t") {
			continue
		}
		cols := strings.Split(line, "\t")
		require.Len(t, cols, 4, "row %q", line)
		method := cols[1]
		if method == "any" {
			method = http.MethodPost
		}
		rows = append(rows, sdkEndpoint{cols[0], method, strings.ReplaceAll(cols[2], "<projectID>", "P2abc"), strings.Split(cols[3], ",")})
	}
	require.NoError(t, sc.Err())
	return rows
}

// Every endpoint the real SDK calls, at the exact path and API version it
// uses, counts against the quotas the table says, and no other: the
// transport is driven once per row, and the quota keys it wrote in Redis
// are read back.
func TestEverySDKEndpointCountsAgainstItsQuotas(t *testing.T) {
	rows := readSDKEndpoints(t)
	require.Greater(t, len(rows), 150, "the table lists every management endpoint of the SDK")
	m := miniredis.RunT(t)
	c := goredis.NewClient(&goredis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	for i, row := range rows {
		// A project per row: its keys are the quotas this row charged.
		project := fmt.Sprintf("row%d", i)
		tr, err := descope.NewTransport(c, project, descope.WithBase(okTransport{}))
		require.NoError(t, err)
		req, err := http.NewRequestWithContext(t.Context(), row.method, "https://api.descope.com"+row.path, strings.NewReader("{}"))
		require.NoError(t, err)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		require.NoError(t, err, row.function)
		resp.Body.Close()
		require.NoError(t, tr.Close())
		prefix := strings.TrimSuffix(redislimiter.KeyFor("descope", project, "x"), "x")
		var charged []string
		for _, k := range m.Keys() {
			if name, ok := strings.CutPrefix(k, prefix); ok {
				charged = append(charged, name)
			}
		}
		want := slices.Clone(row.quotas)
		slices.Sort(want)
		slices.Sort(charged)
		assert.Equal(t, want, charged, "%s %s %s", row.function, row.method, row.path)
	}
}

// okTransport answers every request 200 without a network.
type okTransport struct{}

func (okTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}
