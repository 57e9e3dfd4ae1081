package emulator

import (
	"strconv"
	"time"
)

// Secure configuration assessment: a fixed set of checks per OS family,
// each machine compliant or not by a deterministic draw at a rate per check.

type secureConfig struct {
	id, category, subcategory, name string
	impact                          int
	families                        osFamily
	compliance                      float64 // share of machines compliant
	userImpact                      bool
}

var secureConfigs = []secureConfig{
	{"scid-10000", "Network", "", "Disable insecure administration protocol - Telnet", 5, famWindows, 0.97, false},
	{"scid-20000", "Security controls", "Onboard Devices", "Onboard devices to Microsoft Defender for Endpoint", 9, famWindows | famLinux | famMac, 0.96, false},
	{"scid-39", "OS", "", "Enable 'Domain member: Digitally sign secure channel data (when possible)'", 5, famWindows, 0.9, false},
	{"scid-2010", "Security controls", "Antivirus", "Update Microsoft Defender Antivirus definitions", 8, famWindows, 0.88, false},
	{"scid-2011", "Security controls", "Antivirus", "Turn on Microsoft Defender Antivirus", 9, famWindows, 0.95, false},
	{"scid-2012", "Security controls", "Antivirus", "Turn on real-time protection", 9, famWindows, 0.94, false},
	{"scid-91", "Security controls", "BitLocker", "Encrypt all BitLocker-supported drives", 6, famWinClient, 0.78, true},
	{"scid-2003", "Security controls", "Exploit Guard", "Block Office applications from creating executable content", 6, famWinClient, 0.55, true},
	{"scid-2009", "Accounts", "", "Disable 'Enumerate administrator accounts on elevation'", 4, famWinClient, 0.6, false},
	{"scid-64", "OS", "", "Disable Solicited Remote Assistance", 5, famWindows, 0.7, false},
	{"scid-73", "Network", "", "Disable SMBv1 client driver", 7, famWindows, 0.82, false},
	{"scid-96", "Network", "Firewall", "Turn on Microsoft Defender Firewall", 8, famWindows, 0.9, false},
	{"scid-5001", "OS", "", "Set User Account Control (UAC) to automatically deny elevation requests", 6, famWinServer, 0.5, true},
	{"scid-6090", "Security controls", "Antivirus", "Enable Microsoft Defender Antivirus real-time protection for Linux", 9, famLinux, 0.85, false},
	{"scid-6093", "Security controls", "Antivirus", "Enable Microsoft Defender Antivirus real-time behavior monitoring for Linux", 5, famLinux, 0.6, false},
	{"scid-6100", "OS", "", "Disable root login over SSH", 6, famLinux, 0.72, false},
	{"scid-5090", "Security controls", "Antivirus", "Enable Microsoft Defender Antivirus real-time protection for macOS", 9, famMac, 0.9, false},
	{"scid-5095", "OS", "", "Enable FileVault disk encryption", 7, famMac, 0.8, true},
}

// secureConfigsFor lists the checks that apply to a machine's family.
func secureConfigsFor(m *machine) []*secureConfig {
	fam := osFamilyOf(m.OSPlatform)
	var out []*secureConfig
	for i := range secureConfigs {
		if secureConfigs[i].families&fam != 0 {
			out = append(out, &secureConfigs[i])
		}
	}
	return out
}

func (tm *tvmModel) compliant(m *machine, c *secureConfig) bool {
	return unit(hashOf(tm.seed, 60, strHash(m.ID), strHash(c.id))) < c.compliance
}

// appendConfigRow appends one AssetConfiguration record.
func (tm *tvmModel) appendConfigRow(b []byte, ctx *rowContext, c *secureConfig, at time.Time) []byte {
	m := ctx.m
	b = append(b, `{"deviceId":`...)
	b = appendString(b, m.ID)
	b = append(b, `,"rbacGroupName":`...)
	b = appendString(b, ctx.rbacName)
	b = append(b, `,"deviceName":`...)
	if m.ComputerDNSName == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, m.ComputerDNSName)
	}
	b = append(b, `,"osPlatform":`...)
	b = appendString(b, m.OSPlatform)
	b = append(b, `,"osVersion":`...)
	b = appendString(b, ctx.osVersion)
	b = append(b, `,"timestamp":"`...)
	b = at.UTC().AppendFormat(b, "2006-01-02 15:04:05.000")
	b = append(b, `","configurationId":`...)
	b = appendString(b, c.id)
	b = append(b, `,"configurationCategory":`...)
	b = appendString(b, c.category)
	b = append(b, `,"configurationSubcategory":`...)
	b = appendString(b, c.subcategory)
	b = append(b, `,"configurationImpact":`...)
	b = strconv.AppendInt(b, int64(c.impact), 10)
	b = append(b, `,"isCompliant":`...)
	b = strconv.AppendBool(b, tm.compliant(m, c))
	b = append(b, `,"isApplicable":true,"isExpectedUserImpact":`...)
	b = strconv.AppendBool(b, c.userImpact)
	b = append(b, `,"configurationName":`...)
	b = appendString(b, c.name)
	b = append(b, `,"recommendationReference":`...)
	b = appendString(b, "sca-_-"+c.id)
	return append(b, '}')
}
