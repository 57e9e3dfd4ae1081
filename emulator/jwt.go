package emulator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge/internal/atomicfile"
)

// tokenSigner holds the key that signs the emulator's access tokens. Its
// public half is served as the tenant's JWKS, so a client may validate
// tokens the way it would Entra's.
type tokenSigner struct {
	key  *rsa.PrivateKey
	cert []byte // self-signed certificate of key, DER: the JWKS x5c
	kid  string // base64url SHA-1 of cert, as Entra's kid and x5t
}

const signingKeyFile = "signing-key.pem"

// loadOrCreateSigner reads the signing key from dir, or makes one (and
// saves it when dir is not "").
func loadOrCreateSigner(dir string) (*tokenSigner, error) {
	if dir != "" {
		data, err := os.ReadFile(filepath.Join(dir, signingKeyFile))
		if err == nil {
			return parseSigner(data)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load signing key: %w", err)
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "mdebridge emulator token signing"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert})...)
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("save signing key: %w", err)
		}
		if err := atomicfile.Write(filepath.Join(dir, signingKeyFile), data, 0o600); err != nil {
			return nil, fmt.Errorf("save signing key: %w", err)
		}
	}
	return parseSigner(data)
}

func parseSigner(data []byte) (*tokenSigner, error) {
	s := &tokenSigner{}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("load signing key: %w", err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, errors.New("load signing key: not an RSA key")
			}
			s.key = rk
		case "CERTIFICATE":
			s.cert = b.Bytes
		}
	}
	if s.key == nil || s.cert == nil {
		return nil, fmt.Errorf("load signing key: %s needs a PRIVATE KEY and a CERTIFICATE block", signingKeyFile)
	}
	sum := sha1.Sum(s.cert)
	s.kid = base64.RawURLEncoding.EncodeToString(sum[:])
	return s, nil
}

var b64 = base64.RawURLEncoding

// sign returns a compact RS256 JWT of claims.
func (s *tokenSigner) sign(claims any) (string, error) {
	header, err := json.Marshal(map[string]string{"typ": "JWT", "alg": "RS256", "x5t": s.kid, "kid": s.kid})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(header) + "." + b64.EncodeToString(body)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// jwk is one key of a JWKS document, in Entra's shape.
type jwk struct {
	Kty string   `json:"kty"`
	Use string   `json:"use"`
	Kid string   `json:"kid"`
	X5t string   `json:"x5t"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	X5c []string `json:"x5c"`
}

func (s *tokenSigner) jwk() jwk {
	e := s.key.PublicKey.E
	var eb []byte
	for e > 0 {
		eb = append([]byte{byte(e)}, eb...)
		e >>= 8
	}
	return jwk{
		Kty: "RSA", Use: "sig", Kid: s.kid, X5t: s.kid,
		N:   b64.EncodeToString(s.key.PublicKey.N.Bytes()),
		E:   b64.EncodeToString(eb),
		X5c: []string{base64.StdEncoding.EncodeToString(s.cert)},
	}
}

// jwt is a parsed, not yet verified, compact JWT.
type jwt struct {
	header struct {
		Alg     string `json:"alg"`
		Kid     string `json:"kid"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	claims []byte
	input  string // header.payload, the signed bytes
	sig    []byte
}

func parseJWT(tok string) (*jwt, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWT")
	}
	j := &jwt{input: parts[0] + "." + parts[1]}
	h, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if err := json.Unmarshal(h, &j.header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if j.claims, err = b64.DecodeString(parts[1]); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if j.sig, err = b64.DecodeString(parts[2]); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return j, nil
}

// verify checks the signature with pub for the algorithms Entra clients use:
// RS256 (the emulator's own tokens, ADFS-style assertions) and PS256 (MSAL's
// certificate assertions).
func (j *jwt) verify(pub *rsa.PublicKey) error {
	digest := sha256.Sum256([]byte(j.input))
	switch j.header.Alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], j.sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], j.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return fmt.Errorf("unsupported algorithm %q", j.header.Alg)
}

// numericDate decodes a JWT time claim written as a number or a numeric
// string.
type numericDate int64

func (n *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		var s json.Number
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if f, err = s.Float64(); err != nil {
			return err
		}
	}
	*n = numericDate(f)
	return nil
}

// audience decodes "aud" written as a string or a list of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}
