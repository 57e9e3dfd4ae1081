package emulator

import (
	"slices"
	"sort"
	"time"
)

// The delta API (SoftwareVulnerabilityChangesByMachine): every change of
// the vulnerability rows between two times, as New (a row appeared: a CVE
// was published for software a machine runs, or the machine installed an
// affected version, or joined the tenant), Fixed (a row went: the machine
// updated past the fix) and Updated (a row's exploitability changed). Each
// change carries the time it happened. Applying, in time order, the changes
// in (t1, t2] to the rows at t1 gives exactly the rows at t2.

type deltaStatus uint8

const (
	deltaNew deltaStatus = iota
	deltaFixed
	deltaUpdated
)

func (s deltaStatus) String() string { return [...]string{"New", "Fixed", "Updated"}[s] }

// tvmDeltaRow is one change.
type tvmDeltaRow struct {
	machine int // index in the snapshot's machines
	in      tvmInstall
	n       int
	cve     *tvmCVE // nil: the row of an end-of-support product
	first   time.Time
	at      time.Time // when it changed
	state   time.Time // the time whose attributes the row shows
	status  deltaStatus
}

// tvmDeltaResult is the delta of one window, computed once per window.
type tvmDeltaResult struct {
	since, until time.Time
	snap         *tvmSnapshot
	rows         []tvmDeltaRow
}

// rowKey identifies a vulnerability row of one install.
type rowKey struct {
	n   int
	cve *tvmCVE
}

// installState is the rows of one install at one time.
type installState map[rowKey]string // -> exploitability level

func (tm *tvmModel) installState(in *tvmInstall, t time.Time, into installState) {
	clear(into)
	if in.since.After(t) {
		return
	}
	n, _ := tm.stepOf(in, t)
	if in.eos(t) {
		into[rowKey{n, nil}] = "NoExploit"
	}
	tm.openCVEs(in.p, n, t, func(c *tvmCVE) bool {
		into[rowKey{n, c}] = c.exploitLevel(t)
		return true
	})
}

// delta computes the changes in (since, s.at] for every machine of the
// snapshot.
func (t *Tenant) delta(s *tvmSnapshot, since time.Time) *tvmDeltaResult {
	ts := &t.tvmState
	ts.mu.Lock()
	if d := ts.delta; d != nil && d.snap == s && d.since.Equal(since) {
		ts.mu.Unlock()
		return d
	}
	ts.mu.Unlock()
	d := &tvmDeltaResult{since: since, until: s.at, snap: s}
	tm := s.model
	// The CVEs of each line with news in the window: published, or an
	// exploit appeared.
	news := make([][]*tvmCVE, len(tm.lines))
	inWindow := func(x time.Time) bool { return !x.IsZero() && x.After(since) && !x.After(s.at) }
	for _, c := range tm.cves {
		if inWindow(c.published) || inWindow(c.public) || inWindow(c.verified) || inWindow(c.inKit) {
			news[c.line.idx] = append(news[c.line.idx], c)
		}
	}
	before, after := installState{}, installState{}
	for i, m := range s.machines {
		joined := s.joined[i]
		if joined.After(s.at) {
			continue
		}
		spec := tm.spec(m, joined)
		for k := range spec.installs {
			in := &spec.installs[k]
			d.rows = tm.installDelta(d.rows, i, in, since, s.at, news[in.p.line.idx], before, after)
		}
	}
	sort.Slice(d.rows, func(a, b int) bool { return d.rows[a].less(&d.rows[b]) })
	ts.mu.Lock()
	ts.delta = d
	ts.mu.Unlock()
	return d
}

// less orders changes by machine, time, product, status, release and CVE,
// so that pages of the delta are stable.
func (r *tvmDeltaRow) less(o *tvmDeltaRow) bool {
	switch {
	case r.machine != o.machine:
		return r.machine < o.machine
	case !r.at.Equal(o.at):
		return r.at.Before(o.at)
	case r.in.p.idx != o.in.p.idx:
		return r.in.p.idx < o.in.p.idx
	case r.status != o.status:
		return r.status > o.status // Fixed and Updated before New
	case r.n != o.n:
		return r.n < o.n
	}
	return cveOrdinal(r.cve) < cveOrdinal(o.cve)
}

func cveOrdinal(c *tvmCVE) int {
	if c == nil {
		return -1
	}
	return c.ordinal
}

// installDelta appends the changes of one install in (since, until].
func (tm *tvmModel) installDelta(out []tvmDeltaRow, machine int, in *tvmInstall, since, until time.Time, news []*tvmCVE, before, after installState) []tvmDeltaRow {
	l := in.p.line
	start := since
	if in.since.After(start) {
		start = in.since.Add(-time.Nanosecond) // the join itself is a change
	}
	n0, _ := tm.stepOf(in, start)
	n1, _ := tm.stepOf(in, until)
	// The moments anything about this install may change.
	var points []time.Time
	for k := n0 + 1; k <= n1; k++ {
		if at := tm.release(l, k).Add(in.lag); at.After(start) && !at.After(until) {
			points = append(points, at)
		}
	}
	if in.since.After(since) && !in.since.After(until) {
		points = append(points, in.since)
	}
	if !in.p.eos.IsZero() && in.p.eos.After(start) && !in.p.eos.After(until) {
		points = append(points, in.p.eos)
	}
	bit := uint64(1) << in.p.edition
	for _, c := range news {
		if c.editions&bit == 0 || c.fixStep-c.span > n1 || c.fixStep <= n0 {
			continue // affects no release the install runs in the window
		}
		for _, x := range []time.Time{c.published, c.public, c.verified, c.inKit} {
			if !x.IsZero() && x.After(start) && !x.After(until) {
				points = append(points, x)
			}
		}
	}
	if len(points) == 0 {
		return out
	}
	slices.SortFunc(points, func(a, b time.Time) int { return a.Compare(b) })
	points = slices.CompactFunc(points, func(a, b time.Time) bool { return a.Equal(b) })
	tm.installState(in, start, before)
	prev := start
	for _, p := range points {
		tm.installState(in, p, after)
		for k, lvl := range before {
			if _, ok := after[k]; !ok {
				out = append(out, tvmDeltaRow{machine: machine, in: *in, n: k.n, cve: k.cve, first: tm.rowFirst(in, k, prev), at: p, state: prev, status: deltaFixed})
			} else if after[k] != lvl {
				out = append(out, tvmDeltaRow{machine: machine, in: *in, n: k.n, cve: k.cve, first: tm.rowFirst(in, k, p), at: p, state: p, status: deltaUpdated})
			}
		}
		for k := range after {
			if _, ok := before[k]; !ok {
				out = append(out, tvmDeltaRow{machine: machine, in: *in, n: k.n, cve: k.cve, first: tm.rowFirst(in, k, p), at: p, state: p, status: deltaNew})
			}
		}
		before, after = after, before
		prev = p
	}
	return out
}

// rowFirst is when a row of an install was first seen, as of t.
func (tm *tvmModel) rowFirst(in *tvmInstall, k rowKey, t time.Time) time.Time {
	_, installed := tm.stepOf(in, t)
	if k.cve == nil {
		return maxTime(installed, in.p.eos)
	}
	return maxTime(installed, k.cve.published)
}
