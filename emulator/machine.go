package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// machineField ties one JSON property to its schema entry, its encoder and
// its decoder. The table order is the live key order.
type machineField struct {
	name       string
	typ        odata.Type
	filterable bool // documented as filterable (mde-api.md §2.3)
	get        func(*machine) odata.Value
	enc        func([]byte, *machine) []byte
	dec        func(*machine, json.RawMessage) error
}

func optValue(v opt[string]) odata.Value {
	if !v.OK {
		return odata.Value{Null: true}
	}
	return odata.Value{Str: v.V}
}

func timeValue(t time.Time) odata.Value {
	if t.IsZero() {
		return odata.Value{Null: true}
	}
	return odata.Value{Time: t}
}

func strField(name string, filterable bool, p func(*machine) *string) machineField {
	return machineField{
		name: name, typ: odata.String, filterable: filterable,
		get: func(m *machine) odata.Value { return odata.Value{Str: *p(m)} },
		enc: func(b []byte, m *machine) []byte { return appendString(b, *p(m)) },
		dec: func(m *machine, raw json.RawMessage) error {
			var s *string
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			if s != nil {
				*p(m) = *s
			}
			return nil
		},
	}
}

func optStrField(name string, typ odata.Type, filterable bool, p func(*machine) *opt[string]) machineField {
	return machineField{
		name: name, typ: typ, filterable: filterable,
		get: func(m *machine) odata.Value { return optValue(*p(m)) },
		enc: func(b []byte, m *machine) []byte { return appendOptString(b, *p(m)) },
		dec: func(m *machine, raw json.RawMessage) error { return decodeOpt(raw, p(m)) },
	}
}

func boolField(name string, p func(*machine) *bool) machineField {
	return machineField{
		name: name, typ: odata.Bool,
		get: func(m *machine) odata.Value { return odata.Value{Bool: *p(m)} },
		enc: func(b []byte, m *machine) []byte {
			if *p(m) {
				return append(b, "true"...)
			}
			return append(b, "false"...)
		},
		dec: func(m *machine, raw json.RawMessage) error {
			var v *bool
			if err := json.Unmarshal(raw, &v); err != nil {
				return err
			}
			if v != nil {
				*p(m) = *v
			}
			return nil
		},
	}
}

func timeField(name string, filterable bool, p func(*machine) *time.Time) machineField {
	return machineField{
		name: name, typ: odata.DateTime, filterable: filterable,
		get: func(m *machine) odata.Value { return timeValue(*p(m)) },
		enc: func(b []byte, m *machine) []byte { return appendTime(b, *p(m)) },
		dec: func(m *machine, raw json.RawMessage) error {
			var s *string
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			if s == nil {
				return nil
			}
			t, err := odata.ParseDateTime(*s)
			if err != nil {
				return err
			}
			*p(m) = t
			return nil
		},
	}
}

func decodeOpt[T any](raw json.RawMessage, dst *opt[T]) error {
	var v *T
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	if v == nil {
		*dst = opt[T]{}
	} else {
		*dst = some(*v)
	}
	return nil
}

// machineFields is the Machine entity as the live service serves it
// (testdata/fixtures/observed/get_machine.json), in its key order.
var machineFields = []machineField{
	strField("id", true, func(m *machine) *string { return &m.ID }),
	optStrField("mergedIntoMachineId", odata.String, false, func(m *machine) *opt[string] { return &m.MergedIntoMachineID }),
	boolField("isPotentialDuplication", func(m *machine) *bool { return &m.IsPotentialDuplication }),
	boolField("isExcluded", func(m *machine) *bool { return &m.IsExcluded }),
	optStrField("exclusionReason", odata.String, false, func(m *machine) *opt[string] { return &m.ExclusionReason }),
	strField("computerDnsName", true, func(m *machine) *string { return &m.ComputerDNSName }),
	timeField("firstSeen", false, func(m *machine) *time.Time { return &m.FirstSeen }),
	timeField("lastSeen", true, func(m *machine) *time.Time { return &m.LastSeen }),
	strField("osPlatform", true, func(m *machine) *string { return &m.OSPlatform }),
	optStrField("osVersion", odata.String, false, func(m *machine) *opt[string] { return &m.OSVersion }),
	optStrField("osProcessor", odata.String, false, func(m *machine) *opt[string] { return &m.OSProcessor }),
	optStrField("version", odata.String, true, func(m *machine) *opt[string] { return &m.Version }),
	optStrField("lastIpAddress", odata.String, true, func(m *machine) *opt[string] { return &m.LastIPAddress }),
	optStrField("lastExternalIpAddress", odata.String, false, func(m *machine) *opt[string] { return &m.LastExternalIPAddress }),
	optStrField("agentVersion", odata.String, false, func(m *machine) *opt[string] { return &m.AgentVersion }),
	{
		name: "osBuild", typ: odata.Int,
		get: func(m *machine) odata.Value {
			if !m.OSBuild.OK {
				return odata.Value{Null: true}
			}
			return odata.Value{Int: m.OSBuild.V}
		},
		enc: func(b []byte, m *machine) []byte { return appendOptInt(b, m.OSBuild) },
		dec: func(m *machine, raw json.RawMessage) error { return decodeOpt(raw, &m.OSBuild) },
	},
	strField("healthStatus", true, func(m *machine) *string { return &m.HealthStatus }),
	optStrField("deviceValue", odata.String, true, func(m *machine) *opt[string] { return &m.DeviceValue }),
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
	optStrField("rbacGroupName", odata.String, false, func(m *machine) *opt[string] { return &m.RBACGroupName }),
	optStrField("riskScore", odata.String, true, func(m *machine) *opt[string] { return &m.RiskScore }),
	optStrField("exposureLevel", odata.String, true, func(m *machine) *opt[string] { return &m.ExposureLevel }),
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
	optStrField("aadDeviceId", odata.Guid, true, func(m *machine) *opt[string] { return &m.AADDeviceID }),
	{
		name: "machineTags", typ: odata.StringCollection, filterable: true,
		get: func(m *machine) odata.Value { return odata.Value{List: m.MachineTags} },
		enc: func(b []byte, m *machine) []byte { return appendStrings(b, m.MachineTags) },
		dec: func(m *machine, raw json.RawMessage) error {
			var tags []string
			if err := json.Unmarshal(raw, &tags); err != nil {
				return err
			}
			m.MachineTags = tags
			return nil
		},
	},
	optStrField("defenderAvStatus", odata.String, false, func(m *machine) *opt[string] { return &m.DefenderAVStatus }),
	strField("onboardingStatus", true, func(m *machine) *string { return &m.OnboardingStatus }),
	optStrField("osArchitecture", odata.String, false, func(m *machine) *opt[string] { return &m.OSArchitecture }),
	optStrField("managedBy", odata.String, false, func(m *machine) *opt[string] { return &m.ManagedBy }),
	optStrField("managedByStatus", odata.String, false, func(m *machine) *opt[string] { return &m.ManagedByStatus }),
	{
		name: "ipAddresses", typ: odata.Complex,
		get: func(*machine) odata.Value { return odata.Value{Null: true} },
		enc: appendIPAddresses,
		dec: decodeIPAddresses,
	},
	{
		name: "vmMetadata", typ: odata.Complex,
		get: func(*machine) odata.Value { return odata.Value{Null: true} },
		enc: appendVMMetadata,
		dec: decodeVMMetadata,
	},
}

// machineFieldIndex maps a JSON property name to its index in machineFields.
var machineFieldIndex = func() map[string]int {
	m := make(map[string]int, len(machineFields))
	for i, f := range machineFields {
		m[f.name] = i
	}
	return m
}()

// machineSchema is what $filter, $orderby and $select may use on machines.
var machineSchema = func() *odata.Schema[*machine] {
	var props []odata.Property[*machine]
	for _, f := range machineFields {
		props = append(props, odata.Property[*machine]{
			Name:       f.name,
			Type:       f.typ,
			Filterable: f.filterable,
			Sortable:   f.typ != odata.Complex && f.typ != odata.StringCollection,
			Get:        f.get,
		})
	}
	return odata.NewSchema(odata.SchemaOptions{
		// Microsoft does not publish the machine entity's type name; this
		// follows the PublicVulnerabilityDto naming the service does show.
		TypeName:  "microsoft.windowsDefenderATP.api.PublicMachineDto",
		Functions: []string{"startswith"},
	}, props...)
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

// fieldMask selects machine properties for $select; nil means all.
type fieldMask []bool

func newFieldMask(names []string) fieldMask {
	if names == nil {
		return nil
	}
	mask := make(fieldMask, len(machineFields))
	for _, n := range names {
		if i, ok := machineFieldIndex[n]; ok {
			mask[i] = true
		}
	}
	return mask
}

// appendMachine appends m as a JSON object. prefix, when given, is written
// first inside the braces (the single-entity @odata.context).
func appendMachine(b []byte, m *machine, mask fieldMask, prefix []byte) []byte {
	b = append(b, '{')
	first := true
	if len(prefix) > 0 {
		b = append(b, prefix...)
		first = false
	}
	for i := range machineFields {
		if mask != nil && !mask[i] {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		f := &machineFields[i]
		b = append(b, '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		b = f.enc(b, m)
	}
	if mask == nil {
		for _, x := range m.extra {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, x.Key)
			b = append(b, ':')
			b = append(b, x.Value...)
		}
	}
	return append(b, '}')
}

// decodeMachine reads one machine as the live service (or a tenant file)
// writes it. Known fields must have their live JSON type; unknown fields are
// kept verbatim.
func decodeMachine(data []byte) (*machine, error) {
	m := &machine{MachineTags: []string{}, IPAddresses: []ipAddress{}}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("machine is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("field %s: %w", key, err)
		}
		if i, ok := machineFieldIndex[key]; ok {
			if err := machineFields[i].dec(m, raw); err != nil {
				return nil, fmt.Errorf("field %s: %w", key, err)
			}
			continue
		}
		if strings.HasPrefix(key, "@odata.") {
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, fmt.Errorf("field %s: %w", key, err)
		}
		m.extra = append(m.extra, extraField{Key: key, Value: compact.Bytes()})
	}
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
