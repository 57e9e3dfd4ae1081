// Package kql parses and runs the subset of the Kusto Query Language that
// Microsoft Defender's advanced hunting API is most used with: a table
// followed by a pipeline of where, project (-away, -rename), extend,
// summarize … by (count, countif, dcount, min, max, sum, avg, arg_max,
// arg_min, make_set, make_list, take_any), order/sort by, top, take/limit,
// distinct and count, over scalar expressions with Kusto's operators (==,
// !=, <, >, <=, >=, =~, !~, has, contains, startswith, endswith, in, in~,
// has_any, between, matches regex, their negations and case-sensitive
// forms, and/or, not()) and functions (ago, now, bin, tolower, strcat,
// iff, substring, parse_json …).
//
// A query is lexed, parsed by recursive descent into an AST, type-checked
// against the tables of a Catalog, and compiled into closures that run as a
// push pipeline over rows the tables produce lazily: nothing but the rows a
// blocking operator (summarize, order by) must hold is kept in memory. The
// leading where clauses are also handed to the table as a Filter (partition
// predicates on per-device columns, a Timestamp range), so a generated
// table can skip whole devices and days; the where still runs in full, so
// a table may ignore the Filter without changing any result.
//
// Errors say what Kusto would say: a *SyntaxError for text that does not
// parse, a *SemanticError ("'where' operator: Failed to resolve scalar
// expression named 'x'") for names and types that do not resolve, a
// *LimitError when a query would hold more rows than allowed.
//
// The package knows nothing of HTTP, tenants or Defender's tables: the
// emulator registers those. It must never panic on any input; the fuzz
// tests hold it to that.
package kql
