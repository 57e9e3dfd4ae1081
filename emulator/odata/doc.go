// Package odata parses and evaluates the subset of OData v4 query options that
// Microsoft's security APIs accept ($filter, $top, $skip, $select, $orderby,
// $count), the way the emulator needs it: a query is checked against a typed
// schema of one entity (which properties exist, which may be filtered or
// sorted on) and compiled to plain Go functions over the emulator's own
// in-memory values.
//
// Errors carry messages worded like those of Microsoft's OData stack
// ("Could not find a property named 'x' on type 'y'.", "Syntax error at
// position 12 in '...'."), because a client shows them to its user.
//
// The package knows nothing of HTTP, tenants or any particular entity: each
// entity (machines now, later alerts, machine actions, indicators) declares
// its own Schema. It must never panic on any input; FuzzParseFilter holds it
// to that.
package odata
