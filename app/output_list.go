package app

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// writeList prints a listing as -o asks: json and jsonl as each item's JSON
// (raw gives it: MDE's own object where there is one), csv and table by
// cols. A table the limit cut short says how much was left out.
func writeList[T any](env *Env, format, noun string, items []T, total int, cols []column[T], raw func(T) json.RawMessage) error {
	switch format {
	case "json", "jsonl":
		rs := make([]json.RawMessage, len(items))
		for i, it := range items {
			rs[i] = raw(it)
		}
		if format == "json" {
			return writeRawArray(env.Stdout, rs)
		}
		return writeRawLines(env.Stdout, rs)
	case "csv":
		return writeCSV(env.Stdout, cols, items)
	}
	if err := writeTable(env.Stdout, cols, items); err != nil {
		return err
	}
	if total > len(items) {
		fmt.Fprintf(env.Stderr, "(%d of %d %s shown)\n", len(items), total, noun)
	}
	return nil
}

// marshalled is raw for writeList's items that have no upstream object
// (left as written: a comment's "&" stays "&").
func marshalled[T any](v T) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage("null")
	}
	return b.Bytes()
}
