package emulator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mdebridge/mdebridge/internal/atomicfile"
)

// CA is the emulator's certificate authority. Clients trust its certificate
// (ca.pem) once; every server certificate the emulator makes is signed by it.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// microsoftHosts are the real host names the emulator answers for, so that a
// client pointed at it through DNS or /etc/hosts accepts its certificate.
var microsoftHosts = []string{
	// Entra ID
	"login.microsoftonline.com", "login.microsoftonline.us", "login.windows.net", "sts.windows.net",
	// MDE, commercial and legacy
	"api.securitycenter.microsoft.com", "api.security.microsoft.com", "api.securitycenter.windows.com",
	// MDE, regional (mde-api.md §1.6)
	"us.api.security.microsoft.com", "eu.api.security.microsoft.com", "uk.api.security.microsoft.com",
	"au.api.security.microsoft.com", "swa.api.security.microsoft.com", "ina.api.security.microsoft.com",
	"api-us.securitycenter.microsoft.com", "api-eu.securitycenter.microsoft.com",
	"api-uk.securitycenter.microsoft.com", "api-au.securitycenter.microsoft.com",
	"api-us.securitycenter.windows.com", "api-eu.securitycenter.windows.com", "api-uk.securitycenter.windows.com",
	// MDE, US government
	"api-gcc.securitycenter.microsoft.us", "api-gov.securitycenter.microsoft.us", "api-gov.security.microsoft.us",
	// ARM
	"management.azure.com", "management.usgovcloudapi.net",
	// Graph
	"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us",
}

// LoadOrCreateCA returns the CA kept in dir (ca.pem and ca-key.pem), making
// and saving one on first use. dir "" keeps a new CA in memory only.
func LoadOrCreateCA(dir string) (*CA, error) {
	if dir != "" {
		certPEM, certErr := os.ReadFile(filepath.Join(dir, "ca.pem"))
		keyPEM, keyErr := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
		switch {
		case certErr == nil && keyErr == nil:
			ca, err := parseCA(certPEM, keyPEM)
			if err != nil {
				return nil, fmt.Errorf("load CA from %s: %w", dir, err)
			}
			return ca, nil
		case !errors.Is(certErr, fs.ErrNotExist) && certErr != nil:
			return nil, fmt.Errorf("load CA: %w", certErr)
		case !errors.Is(keyErr, fs.ErrNotExist) && keyErr != nil:
			return nil, fmt.Errorf("load CA: %w", keyErr)
		case (certErr == nil) != (keyErr == nil):
			return nil, fmt.Errorf("load CA from %s: ca.pem and ca-key.pem must both exist or both be absent", dir)
		}
	}
	ca, keyPEM, err := newCA()
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create CA: %w", err)
		}
		if err := atomicfile.Write(filepath.Join(dir, "ca-key.pem"), keyPEM, 0o600); err != nil {
			return nil, fmt.Errorf("create CA: %w", err)
		}
		if err := atomicfile.Write(filepath.Join(dir, "ca.pem"), ca.certPEM, 0o644); err != nil {
			return nil, fmt.Errorf("create CA: %w", err)
		}
	}
	return ca, nil
}

func newCA() (*CA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "mdebridge emulator CA", Organization: []string{"mdebridge"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	ca, err := parseCA(certPEM, keyPEM)
	return ca, keyPEM, err
}

func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("ca.pem holds no certificate")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("ca-key.pem holds no key")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("ca-key.pem holds no signing key")
	}
	return &CA{cert: cert, key: signer, certPEM: certPEM}, nil
}

// CertPEM is the CA certificate in PEM form, as written to ca.pem.
func (c *CA) CertPEM() []byte { return slices.Clone(c.certPEM) }

// Pool is a certificate pool holding only the CA, for clients.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// ServerTLSConfig returns a TLS configuration with a fresh server
// certificate signed by the CA, valid for localhost, the loopback addresses
// and the real Microsoft host names.
func (c *CA) ServerTLSConfig() (*tls.Config, error) {
	return c.ServerTLSConfigFor()
}

// ServerTLSConfigFor is ServerTLSConfig with more host names or IP
// addresses in the certificate, e.g. the name of the machine the emulator
// runs on.
func (c *CA) ServerTLSConfigFor(extraHosts ...string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "mdebridge emulator", Organization: []string{"mdebridge"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, 397), // the longest validity clients accept
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range append(slices.Clone(microsoftHosts), extraHosts...) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{der, c.cert.Raw},
			PrivateKey:  key,
		}},
	}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}
