package mdebridge

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// LogonUser is one account that logged on to one machine: an edge of the
// machine↔user graph, with what MDE knows of the logons. It comes either
// from advanced hunting (DeviceLogonEvents over the last 30 days, Source
// "hunting") or from GET /api/machines/{id}/logonusers (Source "api").
// Each source knows some fields the other does not; unknown ones are nil
// or empty.
type LogonUser struct {
	MachineID     string
	AccountName   string
	AccountDomain string // NetBIOS domain, or the machine's name for a local account
	AccountSID    string
	FirstSeen     time.Time
	LastSeen      time.Time
	LogonTypes    []string // Interactive, RemoteInteractive, Network, Batch, Service …

	IsDomainAdmin     *bool // per-machine API only
	IsOnlyNetworkUser *bool // every logon was a network logon
	IsLocalAdmin      *bool // advanced hunting only

	Source string // "hunting" or "api"
	// Raw is the upstream JSON the edge was last built from: a hunting
	// result row or a logonusers object.
	Raw json.RawMessage

	// Bookkeeping kept by the store.
	SyncedAt  time.Time
	RetiredAt *time.Time
}

// Logon-user sources.
const (
	LogonUserFromHunting = "hunting"
	LogonUserFromAPI     = "api"
)

// ID is the account as MDE names it: domain\name.
func (u LogonUser) ID() string { return u.AccountDomain + `\` + u.AccountName }

// AccountKey identifies the account whatever the casing: domain\name lower-cased.
func (u LogonUser) AccountKey() string { return strings.ToLower(u.ID()) }

// OnlyNetwork says whether every logon type is Network, from the logon
// types when the source did not say.
func (u LogonUser) OnlyNetwork() *bool {
	if u.IsOnlyNetworkUser != nil || len(u.LogonTypes) == 0 {
		return u.IsOnlyNetworkUser
	}
	only := true
	for _, t := range u.LogonTypes {
		only = only && strings.EqualFold(t, "Network")
	}
	return &only
}

// MarshalJSON writes MDE's User entity (the logonusers shape: camelCase,
// logonTypes as one comma-separated string, null where unknown) with the
// machine id, the local-admin flag hunting knows and the source.
func (u LogonUser) MarshalJSON() ([]byte, error) {
	var sid *string
	if u.AccountSID != "" {
		sid = &u.AccountSID
	}
	return json.Marshal(struct {
		ID                string    `json:"id"`
		AccountName       string    `json:"accountName"`
		AccountDomain     string    `json:"accountDomain"`
		AccountSID        *string   `json:"accountSid"`
		FirstSeen         time.Time `json:"firstSeen"`
		LastSeen          time.Time `json:"lastSeen"`
		LogonTypes        string    `json:"logonTypes"`
		IsDomainAdmin     *bool     `json:"isDomainAdmin"`
		IsOnlyNetworkUser *bool     `json:"isOnlyNetworkUser"`
		IsLocalAdmin      *bool     `json:"isLocalAdmin"`
		MachineID         string    `json:"machineId"`
		Source            string    `json:"source"`
	}{u.ID(), u.AccountName, u.AccountDomain, sid, u.FirstSeen.UTC(), u.LastSeen.UTC(), strings.Join(u.LogonTypes, ", "),
		u.IsDomainAdmin, u.OnlyNetwork(), u.IsLocalAdmin, u.MachineID, u.Source})
}

// LogonUserStore keeps machine↔user edges with integer user keys and
// generations. An edge is keyed by machine and account together (never by
// the account alone, which would keep only the first machine of an account
// that logs on to many).
type LogonUserStore interface {
	// UpsertLogonUsers stores edges seen by run runID, as one page of a
	// pass over all machines. An edge keeps the earliest first logon and
	// the latest last logon it was ever seen with.
	UpsertLogonUsers(ctx context.Context, runID int64, users []LogonUser) error
	// RetireLogonUsersNotSeen retires every live edge that run runID did not
	// see, and returns how many. Call it only after a complete pass.
	RetireLogonUsersNotSeen(ctx context.Context, runID int64) (int, error)
	// ReplaceMachineLogonUsers stores the complete list of one machine's
	// users as seen by run runID and retires that machine's other edges.
	ReplaceMachineLogonUsers(ctx context.Context, runID int64, machineID string, users []LogonUser) (retired int, err error)
	// MachineLogonUsers returns the live users of a machine, latest logon first.
	MachineLogonUsers(ctx context.Context, machineID string) ([]LogonUser, error)
	// LiveMachineIDs returns up to limit ids of live machines greater than
	// after, in order: the work list of a per-machine pass.
	LiveMachineIDs(ctx context.Context, after string, limit int) ([]string, error)
}

// LogonUserSource reads logon users from MDE.
type LogonUserSource interface {
	// HuntLogonUsers hands every machine's logon users of the last 30 days
	// to page, a query result at a time. expected (the number of edges last
	// time, or an estimate) sizes the queries so that none hits the
	// service's row cap.
	HuntLogonUsers(ctx context.Context, expected int, page func([]LogonUser) error) error
	// MachineLogonUsers returns one machine's logon users.
	MachineLogonUsers(ctx context.Context, machineID string) ([]LogonUser, error)
}
