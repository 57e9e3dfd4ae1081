package storetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mdebridge/mdebridge"
)

// LogonUser builds a hunted edge with raw JSON that reflects its fields.
func LogonUser(machine, domain, name string, first, last time.Time, types ...string) mdebridge.LogonUser {
	if len(types) == 0 {
		types = []string{"Interactive"}
	}
	u := mdebridge.LogonUser{MachineID: machine, AccountDomain: domain, AccountName: name, FirstSeen: first, LastSeen: last,
		LogonTypes: types, Source: mdebridge.LogonUserFromHunting}
	u.Raw, _ = json.Marshal(map[string]any{"DeviceId": machine, "AccountDomain": domain, "AccountName": name,
		"FirstSeen": first, "LastSeen": last, "LogonTypes": types})
	return u
}

func mustUpsertUsers(t *testing.T, s mdebridge.Store, run int64, users ...mdebridge.LogonUser) {
	t.Helper()
	if err := s.UpsertLogonUsers(t.Context(), run, users); err != nil {
		t.Fatal(err)
	}
}

func accountsOf(t *testing.T, s mdebridge.Store, machine string) []string {
	t.Helper()
	us, err := s.MachineLogonUsers(t.Context(), machine)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range us {
		out = append(out, u.ID())
	}
	slices.Sort(out)
	return out
}

func wantCounts(t *testing.T, s mdebridge.Store, accounts, edges int) {
	t.Helper()
	c, err := s.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c["logon_users"] != accounts || c["machine_logon_users"] != edges {
		t.Errorf("counts %v, want %d logon users on %d machine edges", c, accounts, edges)
	}
}

var (
	m1, m2, m3 = Machine(1).ID, Machine(2).ID, Machine(3).ID
	day        = 24 * time.Hour
)

// testEdgePerMachine: an account that logs on to several machines has an
// edge to each of them, not only to the first (the JupiterOne bug).
func testEdgePerMachine(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	helpdesk := func(m string) mdebridge.LogonUser {
		return LogonUser(m, "contoso", "adm-helpdesk", t0.Add(-9*day), t0.Add(-day), "RemoteInteractive")
	}
	mustUpsertUsers(t, s, 1, helpdesk(m1), helpdesk(m2), LogonUser(m2, "contoso", "alex", t0.Add(-20*day), t0))
	mustUpsertUsers(t, s, 1, helpdesk(m3))
	for _, m := range []string{m1, m2, m3} {
		if !slices.Contains(accountsOf(t, s, m), `contoso\adm-helpdesk`) {
			t.Errorf("machine %s lost its edge to the shared account: %v", m, accountsOf(t, s, m))
		}
	}
	wantCounts(t, s, 2, 4)
	// The same account whatever the casing.
	mustUpsertUsers(t, s, 1, LogonUser(m1, "CONTOSO", "Alex", t0.Add(-3*day), t0))
	wantCounts(t, s, 2, 5)
}

// testLogonUserGenerations: an edge a complete pass no longer sees is
// retired, an edge seen again lives again, and an account lives while it
// has a live edge.
func testLogonUserGenerations(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	a, b := LogonUser(m1, "contoso", "alex", t0.Add(-5*day), t0), LogonUser(m1, "contoso", "sam", t0.Add(-5*day), t0)
	mustUpsertUsers(t, s, 1, a, b)
	*now = now.Add(time.Hour)
	mustUpsertUsers(t, s, 2, a)
	n, err := s.RetireLogonUsersNotSeen(t.Context(), 2)
	if err != nil || n != 1 {
		t.Fatalf("retired %d, %v; want 1", n, err)
	}
	if got := accountsOf(t, s, m1); !slices.Equal(got, []string{`contoso\alex`}) {
		t.Errorf("live users %v", got)
	}
	wantCounts(t, s, 1, 1)
	mustUpsertUsers(t, s, 3, a, b)
	if n, err := s.RetireLogonUsersNotSeen(t.Context(), 3); err != nil || n != 0 {
		t.Errorf("retired %d, %v; want 0", n, err)
	}
	wantCounts(t, s, 2, 2)
}

// testLogonUserSpan: an edge keeps the widest span of logons it was seen
// with (hunting sees only 30 days), and what one source knows that the
// other does not survives the other's updates.
func testLogonUserSpan(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	api := LogonUser(m1, "contoso", "alex", t0.Add(-90*day), t0.Add(-2*day), "Interactive")
	api.Source, api.IsDomainAdmin, api.AccountSID = mdebridge.LogonUserFromAPI, ptr(true), ""
	mustUpsertUsers(t, s, 1, api)
	*now = now.Add(time.Hour)
	hunted := LogonUser(m1, "contoso", "alex", t0.Add(-30*day), t0, "Interactive", "Network")
	hunted.AccountSID, hunted.IsLocalAdmin = "S-1-5-21-1-2-3-1001", ptr(false)
	// Twice in one page: the widest span of both.
	earlier := hunted
	earlier.LastSeen = t0.Add(-time.Hour)
	mustUpsertUsers(t, s, 2, earlier, hunted)
	us, err := s.MachineLogonUsers(t.Context(), strings.ToUpper(m1))
	if err != nil || len(us) != 1 {
		t.Fatalf("%v, %v", us, err)
	}
	want := mdebridge.LogonUser{MachineID: m1, AccountName: "alex", AccountDomain: "contoso", AccountSID: "S-1-5-21-1-2-3-1001",
		FirstSeen: t0.Add(-90 * day), LastSeen: t0, LogonTypes: []string{"Interactive", "Network"},
		IsDomainAdmin: ptr(true), IsLocalAdmin: ptr(false), IsOnlyNetworkUser: ptr(false), Source: mdebridge.LogonUserFromHunting}
	if diff := cmp.Diff(want, us[0], cmpopts.IgnoreFields(mdebridge.LogonUser{}, "Raw", "SyncedAt")); diff != "" {
		t.Errorf("merged edge (-want +got):\n%s", diff)
	}
	if string(us[0].Raw) != string(hunted.Raw) || !us[0].SyncedAt.Equal(*now) {
		t.Errorf("raw %s, synced %v", us[0].Raw, us[0].SyncedAt)
	}
	// Unchanged upstream JSON: only stamped.
	*now = now.Add(time.Hour)
	mustUpsertUsers(t, s, 3, hunted)
	us, _ = s.MachineLogonUsers(t.Context(), m1)
	if len(us) != 1 || !us[0].SyncedAt.Equal(*now) || !us[0].FirstSeen.Equal(t0.Add(-90*day)) {
		t.Errorf("after an unchanged upsert: %+v", us)
	}
}

func ptr[T any](v T) *T { return &v }

// testReplaceMachineLogonUsers: the per-machine list replaces that
// machine's edges and no other's.
func testReplaceMachineLogonUsers(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	mustUpsertUsers(t, s, 1, LogonUser(m1, "contoso", "alex", t0, t0), LogonUser(m1, "contoso", "sam", t0, t0),
		LogonUser(m2, "contoso", "sam", t0, t0))
	*now = now.Add(time.Hour)
	n, err := s.ReplaceMachineLogonUsers(t.Context(), 2, m1, []mdebridge.LogonUser{LogonUser(m1, "contoso", "alex", t0, t0)})
	if err != nil || n != 1 {
		t.Fatalf("retired %d, %v; want 1", n, err)
	}
	if got := accountsOf(t, s, m1); !slices.Equal(got, []string{`contoso\alex`}) {
		t.Errorf("machine 1: %v", got)
	}
	if got := accountsOf(t, s, m2); !slices.Equal(got, []string{`contoso\sam`}) {
		t.Errorf("machine 2 was touched: %v", got)
	}
	if n, err := s.ReplaceMachineLogonUsers(t.Context(), 3, m1, nil); err != nil || n != 1 {
		t.Errorf("an empty list: retired %d, %v; want 1", n, err)
	}
	wantCounts(t, s, 1, 1)
	// A user of another machine in the list is a bug, refused whole.
	if _, err := s.ReplaceMachineLogonUsers(t.Context(), 4, m2, []mdebridge.LogonUser{LogonUser(m1, "contoso", "x", t0, t0)}); err == nil {
		t.Error("a foreign user was accepted")
	}
	wantCounts(t, s, 1, 1)
}

// testLogonUserBadInput: a page with an invalid edge stores nothing.
func testLogonUserBadInput(t *testing.T, open Opener) {
	s, _ := openAt(t, open)
	err := s.UpsertLogonUsers(t.Context(), 1, []mdebridge.LogonUser{LogonUser(m1, "contoso", "alex", t0, t0), LogonUser("", "contoso", "sam", t0, t0)})
	if err == nil {
		t.Fatal("an edge without a machine was accepted")
	}
	wantCounts(t, s, 0, 0)
}

func testLiveMachineIDs(t *testing.T, open Opener) {
	s, now := openAt(t, open)
	mustUpsert(t, s, 1, machines(7))
	*now = now.Add(time.Hour)
	mustUpsert(t, s, 2, machines(7)[:5])
	if _, err := s.RetireMachinesNotSeen(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		ids, err := s.LiveMachineIDs(t.Context(), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) == 0 {
			break
		}
		got = append(got, ids...)
		after = ids[len(ids)-1]
	}
	var want []string
	for i := range 5 {
		want = append(want, Machine(i).ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("live machine ids in pages of 2 (-want +got):\n%s", diff)
	}
}
