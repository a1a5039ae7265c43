package keystore

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestCNGNamesLegacyAndMapped(t *testing.T) {
	n, err := loadCNGNames(nil, fs.ErrNotExist)
	if err != nil {
		t.Fatal(err)
	}
	// Before any mapping, a key keeps the name it always had.
	if got := n.cngName("machine"); got != "credagent-machine" {
		t.Fatalf("unmapped: %q", got)
	}
	fresh := freshCNGKeyName("machine.next")
	if !validCNGKeyName.MatchString(fresh) || !strings.HasPrefix(fresh, "credagent-machine.next-") {
		t.Fatalf("fresh name %q", fresh)
	}
	if fresh == freshCNGKeyName("machine.next") {
		t.Fatal("two fresh names are equal")
	}
	n = n.withKey("machine.next", fresh)
	if n.cngName("machine.next") != fresh {
		t.Fatal("mapping not used")
	}
	// Promote: machine now names the pending key, and the old key is retired.
	r, old := n.renamed("machine.next", "machine")
	if old != "credagent-machine" {
		t.Fatalf("old = %q, want the legacy key", old)
	}
	if r.cngName("machine") != fresh || r.cngName("machine.next") != "credagent-machine.next" {
		t.Fatalf("after rename: %+v", r)
	}
	if len(r.Retired) != 1 || r.Retired[0] != old {
		t.Fatalf("retired %v, want [%s]", r.Retired, old)
	}
	// The original is untouched (the file is replaced, never edited).
	if n.cngName("machine") != "credagent-machine" || len(n.Retired) != 0 {
		t.Fatal("renamed changed its receiver")
	}
	// The mapping survives the file.
	back, err := loadCNGNames(r.marshal(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.cngName("machine") != fresh || len(back.Retired) != 1 {
		t.Fatalf("round trip: %+v", back)
	}
	if done := back.withoutRetired(old); len(done.Retired) != 0 {
		t.Fatalf("withoutRetired: %v", done.Retired)
	}
	// A second rotation, then promotion, retires the first rotation's key.
	fresh2 := freshCNGKeyName("machine.next")
	r2, old2 := back.withKey("machine.next", fresh2).renamed("machine.next", "machine")
	if old2 != fresh || r2.cngName("machine") != fresh2 {
		t.Fatalf("second rotation: old %q, %+v", old2, r2)
	}
	if d := r2.withoutKey("machine"); d.cngName("machine") != "credagent-machine" {
		t.Fatal("withoutKey did not drop the entry")
	}
}

func TestParseCNGNamesRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":           "machine=credagent-machine",
		"unknown field":      `{"version":1,"keys":{},"extra":1}`,
		"wrong version":      `{"version":2,"keys":{}}`,
		"bad logical name":   `{"version":1,"keys":{"../x":"credagent-x"}}`,
		"foreign CNG key":    `{"version":1,"keys":{"machine":"SomeoneElsesKey"}}`,
		"mapped twice":       `{"version":1,"keys":{"a":"credagent-a","b":"credagent-a"}}`,
		"retired and in use": `{"version":1,"keys":{"a":"credagent-a"},"retired":["credagent-a"]}`,
		"foreign retired":    `{"version":1,"keys":{},"retired":["Microsoft Key"]}`,
		"trailing data":      `{"version":1,"keys":{}} {}`,
	} {
		if _, err := parseCNGNames([]byte(in)); err == nil {
			t.Errorf("%s: accepted %q", name, in)
		}
	}
	if _, err := loadCNGNames(nil, errors.New("access denied")); err == nil {
		t.Error("a read error was taken for an empty mapping")
	}
}

func FuzzParseCNGNames(f *testing.F) {
	f.Add([]byte(`{"version":1,"keys":{"machine":"credagent-machine-0123456789abcdef"},"retired":["credagent-machine"]}`))
	f.Add([]byte(`{"version":1,"keys":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseCNGNames(b)
		if err != nil {
			return
		}
		// What parses names only this agent's keys, and survives a round trip.
		for logical, cng := range n.Keys {
			if checkName(logical) != nil || !validCNGKeyName.MatchString(cng) {
				t.Fatalf("accepted %q -> %q", logical, cng)
			}
		}
		back, err := parseCNGNames(n.marshal())
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if len(back.Keys) != len(n.Keys) || len(back.Retired) != len(n.Retired) {
			t.Fatalf("round trip changed %+v into %+v", n, back)
		}
	})
}
