package emulator_test

import (
	"bytes"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator"
)

func TestCAIsKeptAndSignsForMicrosoftHosts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ca, err := emulator.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := emulator.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca.CertPEM(), again.CertPEM()) {
		t.Error("a second load made a new CA")
	}
	for f, mode := range map[string]os.FileMode{"ca.pem": 0o644, "ca-key.pem": 0o600} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %v", f, st.Mode(), err, mode)
		}
	}
	os.Remove(filepath.Join(dir, "ca-key.pem"))
	if _, err := emulator.LoadOrCreateCA(dir); err == nil {
		t.Error("loaded a CA without its key")
	}

	cfg, err := again.ServerTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{
		"localhost", "127.0.0.1", "::1", "login.microsoftonline.com", "login.microsoftonline.us",
		"api.securitycenter.microsoft.com", "api.security.microsoft.com", "eu.api.security.microsoft.com",
		"api-gcc.securitycenter.microsoft.us", "api-gov.securitycenter.microsoft.us", "management.azure.com",
		"management.usgovcloudapi.net", "graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us",
	} {
		opts := x509.VerifyOptions{Roots: again.Pool(), CurrentTime: time.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		if ip := net.ParseIP(host); ip == nil {
			opts.DNSName = host
		}
		if _, err := leaf.Verify(opts); err != nil {
			t.Errorf("%s: %v", host, err)
		}
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	cfg, err = again.ServerTLSConfigFor("emu.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if leaf, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); leaf.VerifyHostname("emu.example.test") != nil {
		t.Error("extra host missing")
	}
}
