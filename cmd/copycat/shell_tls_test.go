package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/server"
)

// writeTestPKI writes a CA and a certificate it signed, valid on 127.0.0.1
// as server and client, as PEM files; it returns their paths.
func writeTestPKI(t *testing.T) (cert, key, ca string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "member"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	require.NoError(t, err)

	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	return write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "EC PRIVATE KEY", keyDER), write("ca.pem", "CERTIFICATE", caDER)
}

// The shell commands speak mutual TLS with --tls-*, as the server does.
func TestShellTLS(t *testing.T) {
	cert, key, ca := writeTestPKI(t)
	tlsCfg, err := (&serverOptions{tlsCert: cert, tlsKey: key, tlsCA: ca}).loadTLS()
	require.NoError(t, err)
	c := startShellCluster(t, func(cfg *server.Config) { cfg.TLS = tlsCfg })
	m := c.members

	tlsFlags := []string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca}
	mustShell(t, m, append([]string{"map", "put", "cfg", "k", "secret"}, tlsFlags...)...)
	assert.Equal(t, "secret\n", mustShell(t, m, append([]string{"map", "get", "cfg", "k"}, tlsFlags...)...))

	// Without a certificate the members refuse the client: a clear error
	// within --timeout.
	began := time.Now()
	_, err = runShell(t, m, "map", "get", "cfg", "k", "--timeout", "1s")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot reach the cluster at "+m+" within 1s")
	assert.Less(t, time.Since(began), 5*time.Second)
}
