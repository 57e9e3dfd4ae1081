// Package mdebridge holds the domain of mdebridge: the types that describe what an
// organisation's Microsoft Defender for Endpoint (MDE) tenant holds once synced
// (machines, and later vulnerabilities, alerts, actions, indicators), the sync run
// bookkeeping, and the interfaces that the adapters implement.
//
// It must never import another package of this module, nor any technology
// (HTTP, SQL, Azure SDKs): adapters depend on the domain, not the other way round.
package mdebridge
