package emulator

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
)

// MachineCount is the number of machines in the tenant.
func (t *Tenant) MachineCount() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.machines)
}

// AddMachines generates n more machines, deterministically from seed and
// the tenant's current machines, and returns their ids.
func (t *Tenant) AddMachines(n int, seed int64) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	// The tenant's size is part of the state: the same seed twice in a row
	// still adds different machines.
	rng := rand.New(rand.NewPCG(uint64(seed), seedMix^uint64(seedFromString(t.id))^uint64(len(t.machines))))
	g := &generator{rng: rng, p: t.profile, now: t.now().UTC(), t: t}
	ids := make([]string, 0, max(0, n))
	for range n {
		m := g.machine()
		t.appendLocked(m)
		t.machineJoined(m.ID, g.now)
		ids = append(ids, m.ID)
	}
	return ids
}

// RemoveMachine deletes the machine with the given id and reports whether
// there was one.
func (t *Tenant) RemoveMachine(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.byID[strings.ToLower(id)]
	if !ok {
		return false
	}
	t.machines = slices.Delete(t.machines, i, i+1)
	t.reindexLocked()
	return true
}

func (t *Tenant) appendLocked(m *machine) {
	t.byID[strings.ToLower(m.ID)] = len(t.machines)
	name := strings.ToLower(m.ComputerDNSName)
	t.byName[name] = append(t.byName[name], len(t.machines))
	t.machines = append(t.machines, m)
}

func (t *Tenant) reindexLocked() {
	t.byID = make(map[string]int, len(t.machines))
	t.byName = make(map[string][]int, len(t.machines))
	for i, m := range t.machines {
		t.byID[strings.ToLower(m.ID)] = i
		name := strings.ToLower(m.ComputerDNSName)
		t.byName[name] = append(t.byName[name], i)
	}
}

// selectMachines returns, in tenant order, the machines for which keep is
// true (all when keep is nil). Machines are immutable, so the caller may use
// them after the lock is released.
func (t *Tenant) selectMachines(keep func(*machine) bool) []*machine {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if keep == nil {
		return slices.Clone(t.machines)
	}
	var out []*machine
	for _, m := range t.machines {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// findMachine looks a machine up by device id or computer name, both
// case-insensitive, as GET /api/machines/{id} does. Of several machines with
// one name the most recently seen wins.
func (t *Tenant) findMachine(key string) *machine {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.findLocked(key)
}

func (t *Tenant) findLocked(key string) *machine {
	k := strings.ToLower(key)
	if i, ok := t.byID[k]; ok {
		return t.machines[i]
	}
	var best *machine
	for _, i := range t.byName[k] {
		if m := t.machines[i]; best == nil || m.LastSeen.After(best.LastSeen) {
			best = m
		}
	}
	return best
}

var errMachineNotFound = errors.New("machine not found")

// updateMachine applies change to a copy of the machine found by key and
// stores the copy. A change that fails leaves the machine as it was.
func (t *Tenant) updateMachine(key string, change func(*machine) error) (*machine, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.findLocked(key)
	if old == nil {
		return nil, errMachineNotFound
	}
	m := old.clone()
	if err := change(m); err != nil {
		return nil, err
	}
	t.machines[t.byID[strings.ToLower(old.ID)]] = m
	return m, nil
}
