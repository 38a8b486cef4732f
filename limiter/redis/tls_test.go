package redis_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/descope-mgmt/ratelimit/internal/redistest"
	"github.com/descope-mgmt/ratelimit/limiter"
	redislimiter "github.com/descope-mgmt/ratelimit/limiter/redis"
)

// TLS and AUTH from a rediss:// URL: the limiter works over them, and a
// missing or wrong password fails without the password in any error.
func TestTLSAndAuthFromURL(t *testing.T) {
	dir := t.TempDir()
	caPEM, certFile, keyFile, caFile := makeCerts(t, dir)
	tlsPort := redistest.FreePort(t)
	srv := redistest.Start(t, "--tls-port", fmt.Sprint(tlsPort), "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no")
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer admin.Close()
	const password = "s3cret-Pa55"
	require.NoError(t, admin.ConfigSet(t.Context(), "requirepass", password).Err())

	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	open := func(url string) *redislimiter.Limiter {
		opts, err := goredis.ParseURL(url)
		require.NoError(t, err)
		require.NotNil(t, opts.TLSConfig, "rediss:// turns TLS on")
		opts.TLSConfig.RootCAs = roots
		opts.MaxRetries = -1
		c := goredis.NewClient(opts)
		t.Cleanup(func() { _ = c.Close() })
		l, err := redislimiter.New(c, "tls:q", limiter.PerSecond(2))
		require.NoError(t, err)
		return l
	}
	ctx := t.Context()
	good := open(fmt.Sprintf("rediss://:%s@127.0.0.1:%d/0", password, tlsPort))
	require.NoError(t, good.Acquire(ctx, 2))
	d, err := good.TryAcquire(ctx, 1)
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the quota is enforced over TLS")

	for _, url := range []string{
		fmt.Sprintf("rediss://127.0.0.1:%d/0", tlsPort),
		fmt.Sprintf("rediss://:wrong-%s@127.0.0.1:%d/0", password, tlsPort),
	} {
		err := open(url).Acquire(ctx, 1)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), password)
		t.Logf("refused: %v", err)
	}
	// Plain text to the TLS port is not Redis.
	plain := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", tlsPort), Password: password, MaxRetries: -1, ReadTimeout: time.Second})
	defer plain.Close()
	assert.Error(t, plain.Ping(ctx).Err())
}

// makeCerts writes a CA and a certificate for 127.0.0.1 signed by it.
func makeCerts(t *testing.T, dir string) (caPEM []byte, certFile, keyFile, caFile string) {
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	caKey, srvKey := key(), key()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ratelimit test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	require.NoError(t, err)
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	return caPEM,
		write("server.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER})),
		write("server.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
		write("ca.crt", caPEM)
}
