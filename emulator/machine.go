package emulator

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/mdebridge/mdebridge/emulator/odata"
)

// machine is the emulator's model of an MDE device, independent of the
// client's domain type. Fields that the live service sends as null are opt.
// A machine is never changed once it is in a Tenant: updates replace it with
// a modified copy, so a response can be encoded without holding a lock.
type machine struct {
	ID                     string
	MergedIntoMachineID    opt[string]
	IsPotentialDuplication bool
	IsExcluded             bool
	ExclusionReason        opt[string]
	ComputerDNSName        string
	FirstSeen              time.Time
	LastSeen               time.Time
	OSPlatform             string
	OSVersion              opt[string]
	OSProcessor            opt[string]
	Version                opt[string]
	LastIPAddress          opt[string]
	LastExternalIPAddress  opt[string]
	AgentVersion           opt[string]
	OSBuild                opt[int64]
	HealthStatus           string
	DeviceValue            opt[string]
	RBACGroupID            int64
	RBACGroupName          opt[string]
	RiskScore              opt[string]
	ExposureLevel          opt[string]
	IsAADJoined            opt[bool]
	AADDeviceID            opt[string]
	MachineTags            []string
	DefenderAVStatus       opt[string]
	OnboardingStatus       string
	OSArchitecture         opt[string]
	ManagedBy              opt[string]
	ManagedByStatus        opt[string]
	IPAddresses            []ipAddress
	VMMetadata             *vmMetadata

	// extra holds the fields of a loaded payload that the emulator does not
	// model, in their original order, so that they are served back.
	extra []extraField
}

type ipAddress struct {
	IPAddress         string      `json:"ipAddress"`
	MACAddress        opt[string] `json:"-"`
	Type              opt[string] `json:"-"`
	OperationalStatus string      `json:"operationalStatus"`
}

type vmMetadata struct {
	VMID           opt[string]
	CloudProvider  opt[string]
	ResourceID     opt[string]
	SubscriptionID opt[string]
}

type extraField struct {
	Key   string
	Value json.RawMessage
}

// clone returns a copy that may be changed without affecting m.
func (m *machine) clone() *machine {
	c := *m
	c.MachineTags = append([]string{}, m.MachineTags...)
	return &c
}

// machineFields is the Machine entity as the live service serves it
// (testdata/fixtures/observed/get_machine.json), in its key order.
var machineFields = []jsonField[*machine]{
	strF("id", true, func(m *machine) *string { return &m.ID }),
	optStrF("mergedIntoMachineId", false, func(m *machine) *opt[string] { return &m.MergedIntoMachineID }),
	boolF("isPotentialDuplication", func(m *machine) *bool { return &m.IsPotentialDuplication }),
	boolF("isExcluded", func(m *machine) *bool { return &m.IsExcluded }),
	optStrF("exclusionReason", false, func(m *machine) *opt[string] { return &m.ExclusionReason }),
	strF("computerDnsName", true, func(m *machine) *string { return &m.ComputerDNSName }),
	timeF("firstSeen", false, func(m *machine) *time.Time { return &m.FirstSeen }),
	timeF("lastSeen", true, func(m *machine) *time.Time { return &m.LastSeen }),
	strF("osPlatform", true, func(m *machine) *string { return &m.OSPlatform }),
	optStrF("osVersion", false, func(m *machine) *opt[string] { return &m.OSVersion }),
	optStrF("osProcessor", false, func(m *machine) *opt[string] { return &m.OSProcessor }),
	optStrF("version", true, func(m *machine) *opt[string] { return &m.Version }),
	optStrF("lastIpAddress", true, func(m *machine) *opt[string] { return &m.LastIPAddress }),
	optStrF("lastExternalIpAddress", false, func(m *machine) *opt[string] { return &m.LastExternalIPAddress }),
	optStrF("agentVersion", false, func(m *machine) *opt[string] { return &m.AgentVersion }),
	optIntF("osBuild", false, func(m *machine) *opt[int64] { return &m.OSBuild }),
	strF("healthStatus", true, func(m *machine) *string { return &m.HealthStatus }),
	optStrF("deviceValue", true, func(m *machine) *opt[string] { return &m.DeviceValue }),
	{
		name: "rbacGroupId", typ: odata.Int, filterable: true,
		get: func(m *machine) odata.Value { return odata.Value{Int: m.RBACGroupID} },
		enc: func(b []byte, m *machine) []byte { return appendOptInt(b, some(m.RBACGroupID)) },
		dec: func(m *machine, raw json.RawMessage) error {
			var v opt[int64]
			if err := decodeOpt(raw, &v); err != nil {
				return err
			}
			m.RBACGroupID = v.V
			return nil
		},
	},
	optStrF("rbacGroupName", false, func(m *machine) *opt[string] { return &m.RBACGroupName }),
	optStrF("riskScore", true, func(m *machine) *opt[string] { return &m.RiskScore }),
	optStrF("exposureLevel", true, func(m *machine) *opt[string] { return &m.ExposureLevel }),
	{
		name: "isAadJoined", typ: odata.Bool,
		get: func(m *machine) odata.Value {
			if !m.IsAADJoined.OK {
				return odata.Value{Null: true}
			}
			return odata.Value{Bool: m.IsAADJoined.V}
		},
		enc: func(b []byte, m *machine) []byte { return appendOptBool(b, m.IsAADJoined) },
		dec: func(m *machine, raw json.RawMessage) error { return decodeOpt(raw, &m.IsAADJoined) },
	},
	optStrF("aadDeviceId", true, func(m *machine) *opt[string] { return &m.AADDeviceID }).withType(odata.Guid),
	{
		name: "machineTags", typ: odata.StringCollection, filterable: true,
		get: func(m *machine) odata.Value { return odata.Value{List: m.MachineTags} },
		enc: func(b []byte, m *machine) []byte { return appendStrings(b, m.MachineTags) },
		dec: func(m *machine, raw json.RawMessage) error { return decodeList(raw, &m.MachineTags) },
	},
	optStrF("defenderAvStatus", false, func(m *machine) *opt[string] { return &m.DefenderAVStatus }),
	strF("onboardingStatus", true, func(m *machine) *string { return &m.OnboardingStatus }),
	optStrF("osArchitecture", false, func(m *machine) *opt[string] { return &m.OSArchitecture }),
	optStrF("managedBy", false, func(m *machine) *opt[string] { return &m.ManagedBy }),
	optStrF("managedByStatus", false, func(m *machine) *opt[string] { return &m.ManagedByStatus }),
	complexF("ipAddresses", appendIPAddresses, decodeIPAddresses),
	complexF("vmMetadata", appendVMMetadata, decodeVMMetadata),
}

// machineFieldIndex maps a JSON property name to its index in machineFields.
var machineFieldIndex = fieldIndex(machineFields)

// machineSchema is what $filter, $orderby and $select may use on machines.
var machineSchema = func() *odata.Schema[*machine] {
	return odata.NewSchema(odata.SchemaOptions{
		// Microsoft does not publish the machine entity's type name; this
		// follows the PublicVulnerabilityDto naming the service does show.
		TypeName:  "microsoft.windowsDefenderATP.api.PublicMachineDto",
		Functions: []string{"startswith"},
	}, schemaProperties(machineFields)...)
}()

func appendIPAddresses(b []byte, m *machine) []byte {
	b = append(b, '[')
	for i, ip := range m.IPAddresses {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ipAddress":`...)
		b = appendString(b, ip.IPAddress)
		b = append(b, `,"macAddress":`...)
		b = appendOptString(b, ip.MACAddress)
		b = append(b, `,"type":`...)
		b = appendOptString(b, ip.Type)
		b = append(b, `,"operationalStatus":`...)
		b = appendString(b, ip.OperationalStatus)
		b = append(b, '}')
	}
	return append(b, ']')
}

func decodeIPAddresses(m *machine, raw json.RawMessage) error {
	var ips []struct {
		IPAddress         *string `json:"ipAddress"`
		MACAddress        *string `json:"macAddress"`
		Type              *string `json:"type"`
		OperationalStatus *string `json:"operationalStatus"`
	}
	if err := json.Unmarshal(raw, &ips); err != nil {
		return err
	}
	m.IPAddresses = make([]ipAddress, 0, len(ips))
	for _, ip := range ips {
		a := ipAddress{}
		if ip.IPAddress != nil {
			a.IPAddress = *ip.IPAddress
		}
		if ip.MACAddress != nil {
			a.MACAddress = some(*ip.MACAddress)
		}
		if ip.Type != nil {
			a.Type = some(*ip.Type)
		}
		if ip.OperationalStatus != nil {
			a.OperationalStatus = *ip.OperationalStatus
		}
		m.IPAddresses = append(m.IPAddresses, a)
	}
	return nil
}

func appendVMMetadata(b []byte, m *machine) []byte {
	v := m.VMMetadata
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"vmId":`...)
	b = appendOptString(b, v.VMID)
	b = append(b, `,"cloudProvider":`...)
	b = appendOptString(b, v.CloudProvider)
	b = append(b, `,"resourceId":`...)
	b = appendOptString(b, v.ResourceID)
	b = append(b, `,"subscriptionId":`...)
	b = appendOptString(b, v.SubscriptionID)
	return append(b, '}')
}

func decodeVMMetadata(m *machine, raw json.RawMessage) error {
	var v *struct {
		VMID           *string `json:"vmId"`
		CloudProvider  *string `json:"cloudProvider"`
		ResourceID     *string `json:"resourceId"`
		SubscriptionID *string `json:"subscriptionId"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	if v == nil {
		m.VMMetadata = nil
		return nil
	}
	o := func(s *string) opt[string] {
		if s == nil {
			return opt[string]{}
		}
		return some(*s)
	}
	m.VMMetadata = &vmMetadata{VMID: o(v.VMID), CloudProvider: o(v.CloudProvider), ResourceID: o(v.ResourceID), SubscriptionID: o(v.SubscriptionID)}
	return nil
}

// fieldMask is the indexes in machineFields of the properties $select
// names, in the schema's order; nil means all.
type fieldMask []int

func newFieldMask(names []string) fieldMask {
	if names == nil {
		return nil
	}
	mask := fieldMask{}
	for i, f := range machineFields {
		if slices.Contains(names, f.name) {
			mask = append(mask, i)
		}
	}
	return mask
}

// appendMachine appends m as a JSON object. prefix, when given, is written
// first inside the braces (the single-entity @odata.context).
func appendMachine(b []byte, m *machine, mask fieldMask, prefix []byte) []byte {
	if mask != nil {
		return appendSelected(b, machineFields, m, mask, nil)
	}
	return appendObject(b, machineFields, m, prefix, m.extra, nil)
}

// decodeMachine reads one machine as the live service (or a tenant file)
// writes it. Known fields must have their live JSON type; unknown fields are
// kept verbatim.
func decodeMachine(data []byte) (*machine, error) {
	m := &machine{MachineTags: []string{}, IPAddresses: []ipAddress{}}
	extra, err := decodeObject(data, machineFields, machineFieldIndex, m)
	if err != nil {
		return nil, err
	}
	m.extra = extra
	if m.ID == "" {
		return nil, errors.New("machine has no id")
	}
	if m.MachineTags == nil {
		m.MachineTags = []string{}
	}
	if m.IPAddresses == nil {
		m.IPAddresses = []ipAddress{}
	}
	return m, nil
}
