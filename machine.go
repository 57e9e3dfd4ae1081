package mdebridge

import (
	"context"
	"encoding/json"
	"time"
)

// Machine is an MDE device (GET /api/machines). Field names and JSON tags are
// MDE's own so that a Machine decodes straight from the API. Enumerations are
// plain strings: Microsoft adds values and changes their casing ("onboarded" in
// the docs, "Onboarded" live), and an unknown value must be kept, not rejected.
// Nullable upstream fields decode to their zero value; Raw keeps the exact
// upstream object, so nothing Microsoft adds is lost.
type Machine struct {
	ID                     string      `json:"id"`
	ComputerDNSName        string      `json:"computerDnsName"`
	FirstSeen              time.Time   `json:"firstSeen"`
	LastSeen               time.Time   `json:"lastSeen"`
	OSPlatform             string      `json:"osPlatform"`
	OSVersion              string      `json:"osVersion"`
	OSProcessor            string      `json:"osProcessor"`
	OSArchitecture         string      `json:"osArchitecture"`
	Version                string      `json:"version"`
	OSBuild                int64       `json:"osBuild"`
	LastIPAddress          string      `json:"lastIpAddress"`
	LastExternalIPAddress  string      `json:"lastExternalIpAddress"`
	AgentVersion           string      `json:"agentVersion"`
	HealthStatus           string      `json:"healthStatus"`
	OnboardingStatus       string      `json:"onboardingStatus"`
	DefenderAVStatus       string      `json:"defenderAvStatus"`
	RBACGroupID            int64       `json:"rbacGroupId"`
	RBACGroupName          string      `json:"rbacGroupName"`
	RiskScore              string      `json:"riskScore"`
	ExposureLevel          string      `json:"exposureLevel"`
	DeviceValue            string      `json:"deviceValue"`
	IsAADJoined            bool        `json:"isAadJoined"`
	AADDeviceID            string      `json:"aadDeviceId"`
	MachineTags            []string    `json:"machineTags"`
	ManagedBy              string      `json:"managedBy"`
	ManagedByStatus        string      `json:"managedByStatus"`
	MergedIntoMachineID    string      `json:"mergedIntoMachineId"`
	IsPotentialDuplication bool        `json:"isPotentialDuplication"`
	IsExcluded             bool        `json:"isExcluded"`
	ExclusionReason        string      `json:"exclusionReason"`
	IPAddresses            []IPAddress `json:"ipAddresses"`
	VMMetadata             *VMMetadata `json:"vmMetadata"`

	// Raw is the machine exactly as MDE sent it.
	Raw json.RawMessage `json:"-"`

	// Bookkeeping kept by the store, not sent by MDE.
	SyncedAt  time.Time  `json:"-"` // when a sync last saw it
	RetiredAt *time.Time `json:"-"` // set once a complete pass no longer saw it
}

// IPAddress is one entry of a machine's ipAddresses list.
type IPAddress struct {
	IPAddress         string `json:"ipAddress"`
	MACAddress        string `json:"macAddress"`
	Type              string `json:"type"`
	OperationalStatus string `json:"operationalStatus"`
}

// VMMetadata describes the cloud VM behind a machine, when there is one.
type VMMetadata struct {
	VMID           string `json:"vmId"`
	CloudProvider  string `json:"cloudProvider"`
	ResourceID     string `json:"resourceId"`
	SubscriptionID string `json:"subscriptionId"`
}

// MachineFilter selects machines in the store. Empty fields do not filter.
// String matches are case-insensitive.
type MachineFilter struct {
	OSPlatform     string // exact, e.g. "Windows11"
	HealthStatus   string
	RiskScore      string
	ExposureLevel  string
	Tag            string // machine has this tag
	RBACGroup      string // group name, or group id as a decimal string
	NamePrefix     string // computerDnsName starts with
	IncludeRetired bool

	Offset int
	Limit  int // 0 means no limit
}

// MachineStore keeps machines with their generations: an upsert stamps each
// machine with the sync run that saw it, and only a complete pass may retire
// what that run did not see. A stored machine's IPAddresses leave out
// loopback addresses (every machine has them, so they identify nothing);
// its Raw JSON keeps everything.
type MachineStore interface {
	// UpsertMachines stores one page of machines as seen by run runID.
	UpsertMachines(ctx context.Context, runID int64, machines []Machine) error
	// RetireMachinesNotSeen marks every live machine that run runID did not see
	// as retired and returns how many it retired. Call it only after a
	// complete, successful pass.
	RetireMachinesNotSeen(ctx context.Context, runID int64) (int, error)
	// FindMachine looks a machine up by device id, computer name (full or the
	// host part before the first dot) or IP address. Several matches give an
	// *AmbiguousError; none gives an error wrapping ErrNotFound.
	FindMachine(ctx context.Context, key string) (*Machine, error)
	// FindMachines returns the machines that match f and the total number of
	// matches before Offset and Limit apply.
	FindMachines(ctx context.Context, f MachineFilter) ([]Machine, int, error)
}

// MachineSource lists every machine of a tenant, page by page. Each call of
// page hands over one page of machines; an error from page stops the listing
// and is returned.
type MachineSource interface {
	ListMachines(ctx context.Context, page func([]Machine) error) error
}
