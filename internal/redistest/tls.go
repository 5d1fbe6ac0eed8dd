package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority with one server and one client
// certificate, written as PEM files for redis-server and held in memory for
// Go clients. Every PKI has its own CA: certificates of one are not trusted
// by another.
type PKI struct {
	// Dir holds the PEM files.
	Dir string
	// CAFile, ServerCertFile, ServerKeyFile, ClientCertFile and
	// ClientKeyFile are the PEM files in Dir.
	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string

	// CA is the CA's certificate.
	CA *x509.Certificate
	// CAPool holds CA only: use it as tls.Config.RootCAs.
	CAPool *x509.CertPool
	// ServerCert is valid for 127.0.0.1, ::1 and localhost, for server and
	// client authentication.
	ServerCert tls.Certificate
	// ClientCert is valid for client authentication only.
	ClientCert tls.Certificate
}

// certValidity is how long generated certificates stay valid; they start an
// hour in the past so that a clock that is slightly off does not matter.
const certValidity = 24 * time.Hour

// NewPKI generates a CA, a server and a client certificate (ECDSA P-256) and
// writes them to dir, which must exist.
func NewPKI(dir string) (*PKI, error) {
	p := &PKI{Dir: dir}
	now := time.Now()

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caSerial, err := serial()
	if err != nil {
		return nil, err
	}
	// A name of its own, so that errors tell two PKIs apart.
	caName := "redistest CA " + caSerial.Text(16)[:min(8, len(caSerial.Text(16)))]
	caTmpl := &x509.Certificate{
		SerialNumber:          caSerial,
		Subject:               pkix.Name{CommonName: caName, Organization: []string{"redistest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("redistest: creating the CA certificate: %w", err)
	}
	if p.CA, err = x509.ParseCertificate(caDER); err != nil {
		return nil, err
	}
	p.CAPool = x509.NewCertPool()
	p.CAPool.AddCert(p.CA)
	p.CAFile = filepath.Join(dir, "ca.crt")
	if err := writePEM(p.CAFile, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}

	leaf := func(name string, tmpl *x509.Certificate) (tls.Certificate, string, string, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return tls.Certificate{}, "", "", err
		}
		if tmpl.SerialNumber, err = serial(); err != nil {
			return tls.Certificate{}, "", "", err
		}
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(certValidity)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.BasicConstraintsValid = true
		der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, &key.PublicKey, caKey)
		if err != nil {
			return tls.Certificate{}, "", "", fmt.Errorf("redistest: creating the %s certificate: %w", name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return tls.Certificate{}, "", "", err
		}
		certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
			return tls.Certificate{}, "", "", err
		}
		if err := writePEM(keyFile, "PRIVATE KEY", keyDER); err != nil {
			return tls.Certificate{}, "", "", err
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		return cert, certFile, keyFile, err
	}
	p.ServerCert, p.ServerCertFile, p.ServerKeyFile, err = leaf("server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost", Organization: []string{"redistest"}},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		// redis-server also presents its certificate as a client (to
		// replicas), hence client authentication too.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	p.ClientCert, p.ClientCertFile, p.ClientKeyFile, err = leaf("client", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "hammerredis test client", Organization: []string{"redistest"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// NewTestPKI is NewPKI in a temporary directory of the test; it fails the
// test on error.
func NewTestPKI(t testing.TB) *PKI {
	t.Helper()
	p, err := NewPKI(t.TempDir())
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return p
}

// ClientTLS returns a client configuration that trusts p's CA and, when
// withCert is true, presents p's client certificate. The server name is
// left empty: redigo takes it from the address dialed.
func (p *PKI) ClientTLS(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: p.CAPool, MinVersion: tls.VersionTLS12}
	if withCert {
		c.Certificates = []tls.Certificate{p.ClientCert}
	}
	return c
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// TLS client authentication modes of redis-server (tls-auth-clients).
const (
	ClientCertOptional = "optional" // verified when presented
	ClientCertRequired = "yes"      // required and verified
	ClientCertIgnored  = "no"       // neither asked for nor checked
)

// TLSOptions configure a TLS server.
type TLSOptions struct {
	// PKI provides the server certificate and the CA that client
	// certificates are checked against. Required.
	PKI *PKI
	// AuthClients is tls-auth-clients: ClientCertOptional,
	// ClientCertRequired or ClientCertIgnored; default ClientCertRequired,
	// as redis-server's.
	AuthClients string
	// Args are extra redis-server arguments, as Options.Args.
	Args []string
}

// TLSServer is a redis-server that also listens for TLS on TLSPort. The
// embedded Server's Port and Socket stay plain TCP and unix: use them (Dial,
// Conn, Addr, URL) as the admin connection, and TLSAddr or TLSURL for the
// client under test.
type TLSServer struct {
	*Server
	// TLSPort is the loopback TLS port.
	TLSPort int
	// PKI is the server's certificate authority.
	PKI *PKI
}

// StartTLS runs a new redis-server with TLS on a free loopback port, besides
// its plain port and unix socket, and waits until it accepts connections.
func StartTLS(opts TLSOptions) (*TLSServer, error) {
	if opts.PKI == nil {
		return nil, errors.New("redistest: StartTLS needs a PKI")
	}
	if opts.AuthClients == "" {
		opts.AuthClients = ClientCertRequired
	}
	var err error
	// As in Start: a free port can be taken before redis binds it.
	for attempt := 0; attempt < 5; attempt++ {
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		args := append([]string{
			"--tls-port", strconv.Itoa(port),
			"--tls-cert-file", opts.PKI.ServerCertFile,
			"--tls-key-file", opts.PKI.ServerKeyFile,
			"--tls-ca-cert-file", opts.PKI.CAFile,
			"--tls-auth-clients", opts.AuthClients,
		}, opts.Args...)
		var s *Server
		if s, err = Start(Options{Args: args}); err == nil {
			return &TLSServer{Server: s, TLSPort: port, PKI: opts.PKI}, nil
		}
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	return nil, err
}

// NewTLS starts a TLS server for the test and stops it when the test ends.
// It fails the test, with InstallHint when redis-server is missing, or with
// the server's log when it was built without TLS.
func NewTLS(t testing.TB, opts TLSOptions) *TLSServer {
	t.Helper()
	s, err := StartTLS(opts)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// TLSAddr returns "127.0.0.1:<tls port>".
func (s *TLSServer) TLSAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.TLSPort))
}

// TLSURL returns "rediss://127.0.0.1:<tls port>".
func (s *TLSServer) TLSURL() string { return "rediss://" + s.TLSAddr() }
