package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// testCA is a certificate authority made up for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	check(t, err)
	cert, err := x509.ParseCertificate(der)
	check(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// memberTLS issues a certificate valid as server and client on 127.0.0.1
// and returns a mutual TLS configuration trusting ca.
func (ca *testCA) memberTLS(t *testing.T, serial int64) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "member"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	check(t, err)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      ca.pool,
		MinVersion:   tls.VersionTLS13,
	}
}

func TestTCPMutualTLS(t *testing.T) {
	checkNoLeaks(t)
	ca := newTestCA(t, "cluster CA")
	var recvA, recvB collector
	a := newTestTCP(t, "c1", 1, recvA.handle, func(c *TCPConfig) { c.TLS = ca.memberTLS(t, 2) })
	b := newTestTCP(t, "c1", 2, recvB.handle, func(c *TCPConfig) { c.TLS = ca.memberTLS(t, 3) })
	a.SetPeer(2, b.Addr().String())
	b.SetPeer(1, a.Addr().String())
	a.Send([]raft.Message{app(1, 2, 0)})
	b.Send([]raft.Message{app(2, 1, 0)})
	waitFor(t, "messages both ways over TLS", func() bool { return recvA.count() == 1 && recvB.count() == 1 })

	// A member whose certificate another CA signed is refused, even though
	// it trusts b's CA.
	other := newTestCA(t, "another CA")
	intruderTLS := other.memberTLS(t, 4)
	intruderTLS.RootCAs = ca.pool
	var unreachable atomic.Int64
	intruder := newTestTCP(t, "c1", 3, func([]raft.Message) {}, func(c *TCPConfig) {
		c.TLS = intruderTLS
		c.Unreachable = func(uint64) { unreachable.Add(1) }
	})
	intruder.SetPeer(2, b.Addr().String())
	intruder.Send([]raft.Message{app(3, 2, 0)})
	waitFor(t, "the intruder failing", func() bool { return unreachable.Load() > 0 })

	// A member trusting the right CA but presenting no certificate fails
	// the mutual handshake on b's side.
	noCert := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS13}
	conn, err := tls.Dial("tcp", b.Addr().String(), noCert)
	if err == nil {
		c := NewConn(conn, 0)
		_ = conn.SetDeadline(time.Now().Add(waitTimeout))
		err = Handshake(c, Hello{ClusterID: "c1", Kind: KindPeer, From: 5, To: 2})
		conn.Close()
	}
	if err == nil {
		t.Fatal("a dialer without a client certificate completed the handshake")
	}

	// A plain TCP dialer gets nowhere either.
	nc, err := net.Dial("tcp", b.Addr().String())
	check(t, err)
	_ = nc.SetDeadline(time.Now().Add(waitTimeout))
	if Handshake(NewConn(nc, 0), Hello{ClusterID: "c1", Kind: KindPeer, From: 6, To: 2}) == nil {
		t.Fatal("a plain TCP dialer completed the handshake with a TLS member")
	}
	nc.Close()

	if recvB.countFrom(3) != 0 || recvB.countFrom(5) != 0 || recvB.countFrom(6) != 0 {
		t.Fatal("b received messages from unauthenticated dialers")
	}
	waitFor(t, "b counting refusals", func() bool { return b.Stats().Refused >= 3 })
}
