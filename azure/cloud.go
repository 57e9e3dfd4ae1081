// Package azure turns configuration into what the Microsoft clients need: a
// cloud profile (login authority, API base URLs and token resources for MDE,
// ARM and Graph, the Defender portal), an azidentity credential, and an HTTP
// client that trusts an extra CA when asked to.
//
// It never switches TLS verification off and never logs a secret.
package azure

import (
	"fmt"
	"strings"
)

// Cloud is everything that differs between Microsoft clouds.
type Cloud struct {
	Name string `json:"name"`
	// LoginAuthority is the Entra ID host, with a trailing slash.
	LoginAuthority string `json:"loginAuthority"`
	MDEBaseURL     string `json:"mdeBaseUrl"`
	// MDEResource is the token audience for the MDE API. Microsoft documents
	// that some MDE APIs want the legacy resource even on the newer hosts, so
	// the regional hosts keep it.
	MDEResource   string `json:"mdeResource"`
	ARMBaseURL    string `json:"armBaseUrl"`
	ARMResource   string `json:"armResource"`
	GraphBaseURL  string `json:"graphBaseUrl"`
	GraphResource string `json:"graphResource"`
	PortalURL     string `json:"portalUrl"`
}

// Scope turns a resource into the v2 token scope for it.
func Scope(resource string) string {
	return strings.TrimSuffix(resource, "/") + "/.default"
}

// MDEScope is the token scope for the MDE API.
func (c Cloud) MDEScope() string { return Scope(c.MDEResource) }

// ARMScope is the token scope for Azure Resource Manager.
func (c Cloud) ARMScope() string { return Scope(c.ARMResource) }

// GraphScope is the token scope for Microsoft Graph.
func (c Cloud) GraphScope() string { return Scope(c.GraphResource) }

// Public is the commercial (worldwide) cloud.
var publicCloud = Cloud{
	Name:           "public",
	LoginAuthority: "https://login.microsoftonline.com/",
	MDEBaseURL:     "https://api.securitycenter.microsoft.com",
	MDEResource:    "https://api.securitycenter.microsoft.com",
	ARMBaseURL:     "https://management.azure.com",
	ARMResource:    "https://management.azure.com/",
	GraphBaseURL:   "https://graph.microsoft.com",
	GraphResource:  "https://graph.microsoft.com",
	PortalURL:      "https://security.microsoft.com",
}

// GCC is US Government Community Cloud: commercial login, its own MDE host.
var gccCloud = Cloud{
	Name:           "gcc",
	LoginAuthority: "https://login.microsoftonline.com/",
	MDEBaseURL:     "https://api-gcc.securitycenter.microsoft.us",
	MDEResource:    "https://api-gcc.securitycenter.microsoft.us",
	ARMBaseURL:     "https://management.azure.com",
	ARMResource:    "https://management.azure.com/",
	GraphBaseURL:   "https://graph.microsoft.com",
	GraphResource:  "https://graph.microsoft.com",
	PortalURL:      "https://security.microsoft.com",
}

// GCC High runs on Azure Government.
var gccHighCloud = Cloud{
	Name:           "gcc-high",
	LoginAuthority: "https://login.microsoftonline.us/",
	MDEBaseURL:     "https://api-gov.securitycenter.microsoft.us",
	MDEResource:    "https://api-gov.securitycenter.microsoft.us",
	ARMBaseURL:     "https://management.usgovcloudapi.net",
	ARMResource:    "https://management.usgovcloudapi.net/",
	GraphBaseURL:   "https://graph.microsoft.us",
	GraphResource:  "https://graph.microsoft.us",
	PortalURL:      "https://security.microsoft.us",
}

// DoD shares GCC High's MDE host and has its own Graph and portal.
var dodCloud = Cloud{
	Name:           "dod",
	LoginAuthority: "https://login.microsoftonline.us/",
	MDEBaseURL:     "https://api-gov.securitycenter.microsoft.us",
	MDEResource:    "https://api-gov.securitycenter.microsoft.us",
	ARMBaseURL:     "https://management.usgovcloudapi.net",
	ARMResource:    "https://management.usgovcloudapi.net/",
	GraphBaseURL:   "https://dod-graph.microsoft.us",
	GraphResource:  "https://dod-graph.microsoft.us",
	PortalURL:      "https://security.apps.mil",
}

// regionHosts are the regional MDE API hosts of the public cloud (Microsoft's
// "improve request performance" page). They serve the same tenant data and
// accept the same token audience.
var regionHosts = map[string]string{
	"us":  "https://us.api.security.microsoft.com",
	"eu":  "https://eu.api.security.microsoft.com",
	"uk":  "https://uk.api.security.microsoft.com",
	"au":  "https://au.api.security.microsoft.com",
	"swa": "https://swa.api.security.microsoft.com",
	"ina": "https://ina.api.security.microsoft.com",
}

// Lookup returns the profile of a named cloud: public, gcc, gcc-high or dod.
// custom starts from public; Override supplies its endpoints.
func Lookup(name string) (Cloud, error) {
	switch name {
	case "", "public":
		return publicCloud, nil
	case "gcc":
		return gccCloud, nil
	case "gcc-high":
		return gccHighCloud, nil
	case "dod":
		return dodCloud, nil
	case "custom":
		c := publicCloud
		c.Name = "custom"
		return c, nil
	}
	return Cloud{}, fmt.Errorf("unknown cloud %q (public, gcc, gcc-high, dod, custom)", name)
}

// WithRegion pins the MDE API to a regional host of the public cloud.
func (c Cloud) WithRegion(region string) (Cloud, error) {
	if region == "" {
		return c, nil
	}
	host, ok := regionHosts[region]
	if !ok {
		return c, fmt.Errorf("unknown MDE region %q (us, eu, uk, au, swa, ina)", region)
	}
	if c.Name != "public" {
		return c, fmt.Errorf("MDE regions exist only in the public cloud, not %s", c.Name)
	}
	c.MDEBaseURL = host
	return c, nil
}

// Endpoints overrides parts of a profile; empty fields keep the profile's.
type Endpoints struct {
	Login, MDE, MDEResource, ARM, ARMResource, Graph, GraphResource, Portal string
}

// Override returns c with the non-empty endpoints of e. When the MDE base URL
// changes but its resource is not given, the resource stays what the cloud
// uses (the emulator, like the real service, expects the real audience).
func (c Cloud) Override(e Endpoints) Cloud {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	if e.Login != "" && !strings.HasSuffix(e.Login, "/") {
		e.Login += "/"
	}
	set(&c.LoginAuthority, e.Login)
	set(&c.MDEBaseURL, strings.TrimSuffix(e.MDE, "/"))
	set(&c.MDEResource, e.MDEResource)
	set(&c.ARMBaseURL, strings.TrimSuffix(e.ARM, "/"))
	set(&c.ARMResource, e.ARMResource)
	set(&c.GraphBaseURL, strings.TrimSuffix(e.Graph, "/"))
	set(&c.GraphResource, e.GraphResource)
	set(&c.PortalURL, e.Portal)
	return c
}
