// Package emulator is a faithful, offline stand-in for the Microsoft APIs
// mdebridge speaks: Entra ID's token service (OpenID discovery, JWKS, the v1
// and v2 client-credentials token endpoints) and the Microsoft Defender for
// Endpoint API, with a synthetic tenant behind them. It is an http.Handler:
// tests mount it with httptest (see package emulatortest), "mdebridge
// emulate" serves it over TLS with a CA of its own (LoadOrCreateCA), and
// anyone may point their own MDE integration at it.
//
// Faithful means: the live service's JSON shapes, key order, nulls, status
// codes, error bodies and wording (Entra's AADSTS errors, MDE's
// {"error":{"code","message","target"}}), its paging ($top without a
// nextLink, nextLink with $skip otherwise), its OData dialect, its per-app,
// per-API rate limits with Retry-After, and its case-insensitive,
// host-agnostic routing. Where Microsoft's behaviour is undocumented the
// choice made is written next to the code.
//
// What it must never do: let a client bug pass silently. An unknown route
// is answered 404 with an empty body, as the live service does, and logged
// at error level with the method and path; a wrong method is 405 with Allow;
// a missing permission is 403 with the live message, never an empty result.
// It must never call the real Microsoft services, and it must not import
// the mdebridge domain package: it models the service independently, so
// that the client is tested against the wire format and not against itself.
//
// Beside the Microsoft surface, /_emulator/ holds the emulator's own
// control API (stats, apps, machines, alerts and their activity, fault
// injection, rate limits), documented in README.md.
package emulator
