package emulator_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

func writeTenant(t *testing.T, tn *emulator.Tenant) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenant.json")
	if err := tn.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestGenerateIsDeterministic(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	a := writeTenant(t, emulator.Generate(emulator.GenerateOptions{Seed: 7, Machines: 2000, Now: now}))
	b := writeTenant(t, emulator.Generate(emulator.GenerateOptions{Seed: 7, Machines: 2000, Now: now}))
	if !bytes.Equal(a, b) {
		t.Fatal("the same seed and clock gave different tenants")
	}
	if c := writeTenant(t, emulator.Generate(emulator.GenerateOptions{Seed: 8, Machines: 2000, Now: now})); bytes.Equal(a, c) {
		t.Fatal("different seeds gave the same tenant")
	}
	tn := emulator.Generate(emulator.GenerateOptions{Seed: 7, Machines: 3, Now: now, TenantID: "A1B2C3D4-0000-4000-8000-000000000001"})
	if tn.ID() != "a1b2c3d4-0000-4000-8000-000000000001" {
		t.Errorf("tenant id %q", tn.ID())
	}

	var f struct {
		TenantID string `json:"tenantId"`
		Machines []struct {
			ID        string    `json:"id"`
			Name      string    `json:"computerDnsName"`
			LastSeen  time.Time `json:"lastSeen"`
			FirstSeen time.Time `json:"firstSeen"`
		} `json:"machines"`
	}
	if err := json.Unmarshal(a, &f); err != nil {
		t.Fatal(err)
	}
	hex40 := regexp.MustCompile(`^[0-9a-f]{40}$`)
	ids, names := map[string]bool{}, map[string]bool{}
	for _, m := range f.Machines {
		if !hex40.MatchString(m.ID) || ids[m.ID] {
			t.Fatalf("id %q is not a new 40-hex id", m.ID)
		}
		ids[m.ID] = true
		if names[m.Name] {
			t.Errorf("computer name %q repeated", m.Name)
		}
		names[m.Name] = true
		if m.LastSeen.After(now) || m.FirstSeen.After(m.LastSeen) {
			t.Errorf("%s: firstSeen %v lastSeen %v now %v", m.ID, m.FirstSeen, m.LastSeen, now)
		}
	}
}

func TestGeneratedMixIsRealistic(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(5000))
	resp, body := emu.Get(t, "/api/machines?$top=5000", emu.AppToken(t))
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	var list struct {
		Value []struct {
			OSPlatform, Version, HealthStatus, OnboardingStatus string
			OSBuild                                             *int64
			RBACGroupID                                         int64 `json:"rbacGroupId"`
			RBACGroupName                                       *string
			VMMetadata                                          *struct{ ResourceID string } `json:"vmMetadata"`
			IPAddresses                                         []struct {
				IPAddress  string
				MACAddress *string
				Type       *string
			}
		}
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	builds := map[string]int64{"Windows10/21H2": 19044, "Windows10/22H2": 19045, "Windows11/22H2": 22621, "Windows11/23H2": 22631, "Windows11/24H2": 26100}
	for _, m := range list.Value {
		count["platform:"+m.OSPlatform]++
		count["health:"+m.HealthStatus]++
		count["onboarding:"+m.OnboardingStatus]++
		if want, ok := builds[m.OSPlatform+"/"+m.Version]; ok && m.OSBuild != nil && *m.OSBuild != want {
			t.Errorf("%s %s has build %d, want %d", m.OSPlatform, m.Version, *m.OSBuild, want)
		}
		if (m.RBACGroupID == 0) != (m.RBACGroupName == nil) {
			t.Errorf("rbacGroupId %d with name %v", m.RBACGroupID, m.RBACGroupName)
		}
		if m.VMMetadata != nil {
			count["vm"]++
			if !strings.HasPrefix(m.VMMetadata.ResourceID, "/subscriptions/") {
				t.Errorf("resourceId %q", m.VMMetadata.ResourceID)
			}
		}
		for _, ip := range m.IPAddresses {
			if ip.Type != nil && *ip.Type == "SoftwareLoopback" && ip.MACAddress != nil {
				t.Errorf("Windows loopback with MAC %q", *ip.MACAddress)
			}
		}
	}
	for _, k := range []string{
		"platform:Windows10", "platform:Windows11", "platform:WindowsServer2012R2", "platform:WindowsServer2016",
		"platform:WindowsServer2019", "platform:WindowsServer2022", "platform:WindowsServer2025", "platform:Ubuntu",
		"platform:RedHatEnterpriseLinux", "platform:Debian", "platform:macOS",
		"health:Active", "health:Inactive", "health:ImpairedCommunication", "health:NoSensorData",
		"onboarding:Onboarded", "onboarding:CanBeOnboarded", "vm",
	} {
		if count[k] == 0 {
			t.Errorf("no machine with %s in 5000", k)
		}
	}
	if count["health:Active"] < 3000 || count["onboarding:Onboarded"] < 4500 {
		t.Errorf("mix: %v", count)
	}
}

func TestTenantFileRoundTripKeepsUnknownFields(t *testing.T) {
	dir := t.TempDir()
	live, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "observed", "get_machine.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(live, &m); err != nil {
		t.Fatal(err)
	}
	m["futureField"] = map[string]any{"nested": []any{1.0, "two", nil}}
	m["deviceCategory"] = "Endpoint"
	file, _ := json.Marshal(map[string]any{"tenantId": "f5d73c4c-bb3d-421b-8bee-424916a4acca", "displayName": "Loaded", "machines": []any{m}})
	path := filepath.Join(dir, "in.json")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	tn, err := emulator.LoadTenantFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tn.ID() != "f5d73c4c-bb3d-421b-8bee-424916a4acca" || tn.DisplayName() != "Loaded" || tn.MachineCount() != 1 {
		t.Fatalf("loaded %s %q %d", tn.ID(), tn.DisplayName(), tn.MachineCount())
	}

	// Served back with the unknown fields, every live field unchanged.
	emu := emulatortest.New(t, emulatortest.WithTenant(tn))
	resp, body := emu.Get(t, "/api/machines/556b3952acb0bff29816d267822305781cc183ec", emu.AppToken(t))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var served map[string]any
	if err := json.Unmarshal(body, &served); err != nil {
		t.Fatal(err)
	}
	m["@odata.context"] = emu.URL + "/api/$metadata#Machines/$entity"
	want, _ := json.Marshal(m)
	got, _ := json.Marshal(served)
	if !bytes.Equal(want, got) {
		t.Errorf("served machine differs from the loaded one:\n got %s\nwant %s", got, want)
	}

	// In the live key order, the unknown fields last in the order of the file
	// (which json.Marshal sorted).
	if diff := cmp.Diff(append(objectKeys(t, live), "deviceCategory", "futureField"), objectKeys(t, body)); diff != "" {
		t.Errorf("key order (-want +got):\n%s", diff)
	}

	// Write, load, write: the same bytes.
	first := writeTenant(t, tn)
	again := filepath.Join(dir, "again.json")
	if err := os.WriteFile(again, first, 0o644); err != nil {
		t.Fatal(err)
	}
	tn2, err := emulator.LoadTenantFile(again)
	if err != nil {
		t.Fatal(err)
	}
	if second := writeTenant(t, tn2); !bytes.Equal(first, second) {
		t.Errorf("round trip changed the file:\n%s\n%s", first, second)
	}

	// A captured list response loads as a tenant too.
	tn3, err := emulator.LoadTenantFile(filepath.Join("..", "testdata", "fixtures", "peers", "graph-microsoft-endpoint-defender", "GET_api_machines.json"))
	if err != nil || tn3.MachineCount() != 9 {
		t.Errorf("captured response as tenant: %v, %d machines", err, tn3.MachineCount())
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"machines":[{"id":"x","rbacGroupId":"seven"}]}`), 0o644)
	if _, err := emulator.LoadTenantFile(bad); err == nil || !strings.Contains(err.Error(), "rbacGroupId") {
		t.Errorf("mistyped field: %v", err)
	}
}

func TestAddAndRemoveMachines(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := emulator.Generate(emulator.GenerateOptions{Seed: 1, Machines: 100, Now: now})
	b := emulator.Generate(emulator.GenerateOptions{Seed: 1, Machines: 100, Now: now})
	idsA, idsB := a.AddMachines(50, 99), b.AddMachines(50, 99)
	if len(idsA) != 50 || a.MachineCount() != 150 || strings.Join(idsA, ",") != strings.Join(idsB, ",") {
		t.Fatalf("AddMachines is not deterministic or did not add 50")
	}
	if again := a.AddMachines(50, 99); strings.Join(again, ",") == strings.Join(idsA, ",") {
		t.Error("the same seed twice added the same machines")
	}
	if !a.RemoveMachine(strings.ToUpper(idsA[0])) || a.RemoveMachine(idsA[0]) || a.MachineCount() != 199 {
		t.Errorf("RemoveMachine: count %d", a.MachineCount())
	}
}

// objectKeys lists the top-level keys of a JSON object in order.
func objectKeys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}
