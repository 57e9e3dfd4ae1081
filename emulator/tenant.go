package emulator

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Tenant is the emulated organisation: its identity and everything MDE holds
// about it. It is safe for concurrent use. Each entity area lives in its own
// file (tenant_machines.go; later alerts, machine actions, indicators,
// vulnerabilities).
type Tenant struct {
	mu          sync.RWMutex
	id          string // GUID, lower case
	domain      string // initial domain, e.g. contoso.onmicrosoft.com
	displayName string
	profile     *profile         // how AddMachines makes new machines
	now         func() time.Time // for machines added later

	machines []*machine
	byID     map[string]int   // lower-case id -> index in machines
	byName   map[string][]int // lower-case computerDnsName -> indexes

	alerts alertSet      // tenant_alerts.go
	resp   responseState // actions, indicators, investigations (tenant_actions.go and neighbours)
}

func newTenant(id, domain, displayName string, p *profile, now time.Time) *Tenant {
	return &Tenant{
		id: strings.ToLower(id), domain: strings.ToLower(domain), displayName: displayName, profile: p,
		now:    func() time.Time { return now },
		byID:   map[string]int{},
		byName: map[string][]int{},
	}
}

// ID is the tenant's GUID.
func (t *Tenant) ID() string { return t.id }

// Domain is the tenant's initial domain (name.onmicrosoft.com); the token
// endpoint accepts it in place of the GUID.
func (t *Tenant) Domain() string { return t.domain }

// DisplayName is the organisation's name.
func (t *Tenant) DisplayName() string { return t.displayName }

// setClock makes machines added from now on relative to the server's clock.
func (t *Tenant) setClock(now func() time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.now = now
}

// tenantFile is the on-disk form: the tenant's identity and its machines in
// the live JSON shape. "value" is accepted in place of "machines", so that a
// captured GET /api/machines response loads as a tenant.
type tenantFile struct {
	TenantID    string            `json:"tenantId"`
	Domain      string            `json:"domain"`
	DisplayName string            `json:"displayName"`
	Machines    []json.RawMessage `json:"machines"`
	Value       []json.RawMessage `json:"value"`
	Alerts      []json.RawMessage `json:"alerts,omitempty"`
}

// LoadTenantFile reads a tenant written by WriteFile, or any JSON object with
// a "machines" or "value" list of machines as the live API serves them.
// Fields the emulator does not model are kept and served back. A file
// without a tenantId gets one derived from its content.
func LoadTenantFile(path string) (*Tenant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tenant: %w", err)
	}
	var f tenantFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("load tenant %s: %w", path, err)
	}
	id := f.TenantID
	if id == "" {
		sum := sha256.Sum256(data)
		id = guidFromBytes(sum[:16])
	}
	if !isGUID(id) {
		return nil, fmt.Errorf("load tenant %s: tenantId %q is not a GUID", path, id)
	}
	seed := seedFromString(id)
	p := newProfile(seed)
	domain, name := f.Domain, f.DisplayName
	if domain == "" {
		domain = p.tenantDomain
	}
	if name == "" {
		name = p.orgDisplayName
	}
	raws := f.Machines
	if raws == nil {
		raws = f.Value
	}
	t := newTenant(id, domain, name, p, time.Now().UTC())
	for i, raw := range raws {
		m, err := decodeMachine(raw)
		if err != nil {
			return nil, fmt.Errorf("load tenant %s: machine %d: %w", path, i, err)
		}
		if _, dup := t.byID[strings.ToLower(m.ID)]; dup {
			return nil, fmt.Errorf("load tenant %s: machine %d: duplicate id %s", path, i, m.ID)
		}
		t.appendLocked(m)
	}
	if err := t.loadAlerts(f.Alerts); err != nil {
		return nil, fmt.Errorf("load tenant %s: %w", path, err)
	}
	return t, nil
}

// WriteFile writes the tenant as JSON: the same seed and clock give the same
// bytes. The file is replaced atomically.
func (t *Tenant) WriteFile(path string) error {
	t.mu.RLock()
	var b []byte
	b = append(b, `{"tenantId":`...)
	b = appendString(b, t.id)
	b = append(b, `,"domain":`...)
	b = appendString(b, t.domain)
	b = append(b, `,"displayName":`...)
	b = appendString(b, t.displayName)
	b = append(b, `,"machines":[`...)
	for i, m := range t.machines {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '\n')
		b = appendMachine(b, m, nil, nil)
	}
	t.mu.RUnlock()
	b = append(b, "\n]"...)
	b = t.appendAlertsFile(b)
	b = append(b, "}\n"...)

	tmp, err := os.CreateTemp(filepath.Dir(path), ".tenant-*.json")
	if err != nil {
		return fmt.Errorf("write tenant: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	w := bufio.NewWriter(tmp)
	if _, err := w.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write tenant: %w", err)
	}
	if err := errors.Join(w.Flush(), tmp.Close()); err != nil {
		return fmt.Errorf("write tenant: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write tenant: %w", err)
	}
	return nil
}

func seedFromString(s string) int64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return int64(h.Sum64())
}

func guidFromBytes(b []byte) string {
	var buf bytes.Buffer
	for i, c := range b[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf.WriteByte('-')
		}
		buf.WriteByte(hexDigits[c>>4])
		buf.WriteByte(hexDigits[c&0xf])
	}
	return buf.String()
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
