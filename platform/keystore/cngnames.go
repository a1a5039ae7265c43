package keystore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
)

// CNG key names
//
// CNG cannot rename a persisted key, so the backend names its keys through
// CNGNamesFile, a private file in the key store's directory that maps each
// logical key name ("machine", "machine.next") to the CNG key that holds it.
// Promote (Rename) switches the mapping in one atomic file replacement and
// only then deletes the old CNG key, so a rotation finishes and the old key
// is destroyed. A CNG key whose deletion did not complete stays listed under
// "retired" and is deleted on the store's next use.
//
// A logical name with no entry is the CNG key "credagent-<name>", the name
// every key had before this file existed, so machines enrolled then keep
// their key.

// CNGNamesFile is the mapping's file name in the key store directory.
const CNGNamesFile = "cng-keys.json"

// CNGLockFile is the file whose lock serialises changes to CNGNamesFile and
// CNGProviderFile between processes (fsutil.LockPrivate): the service and an
// operator's 'credagent enroll' each read the mapping, change it and write it
// back, and without the lock one of two such changes would be lost, leaving
// a key made and then forgotten.
const CNGLockFile = "cng-keys.lock"

// cngNames is CNGNamesFile's content.
type cngNames struct {
	Version int               `json:"version"`
	Keys    map[string]string `json:"keys"`              // logical name -> CNG key name
	Retired []string          `json:"retired,omitempty"` // CNG keys to delete
}

const cngNamesVersion = 1

// validCNGKeyName is what this backend ever names a CNG key: the prefix,
// a valid logical name, and optionally a random suffix.
var validCNGKeyName = regexp.MustCompile(`^credagent-[A-Za-z0-9][A-Za-z0-9._-]{0,63}(-[0-9a-f]{16})?$`)

func newCNGNames() cngNames { return cngNames{Version: cngNamesVersion, Keys: map[string]string{}} }

// parseCNGNames reads CNGNamesFile. A file that does not parse, or names a
// key this backend would never make, is an error: the last good state is
// whatever the operator restores, never a guess.
func parseCNGNames(b []byte) (cngNames, error) {
	var n cngNames
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		return cngNames{}, fmt.Errorf("keystore: %s: %w", CNGNamesFile, err)
	}
	if dec.More() {
		return cngNames{}, fmt.Errorf("keystore: %s: trailing data", CNGNamesFile)
	}
	if n.Version != cngNamesVersion {
		return cngNames{}, fmt.Errorf("keystore: %s: version %d, want %d", CNGNamesFile, n.Version, cngNamesVersion)
	}
	if n.Keys == nil {
		n.Keys = map[string]string{}
	}
	seen := map[string]bool{}
	for logical, cng := range n.Keys {
		if err := checkName(logical); err != nil {
			return cngNames{}, fmt.Errorf("keystore: %s: %w", CNGNamesFile, err)
		}
		if !validCNGKeyName.MatchString(cng) {
			return cngNames{}, fmt.Errorf("keystore: %s: %q is not a CNG key name of this agent", CNGNamesFile, cng)
		}
		if seen[cng] {
			return cngNames{}, fmt.Errorf("keystore: %s: CNG key %q is mapped twice", CNGNamesFile, cng)
		}
		seen[cng] = true
	}
	for _, cng := range n.Retired {
		if !validCNGKeyName.MatchString(cng) {
			return cngNames{}, fmt.Errorf("keystore: %s: %q is not a CNG key name of this agent", CNGNamesFile, cng)
		}
		if seen[cng] {
			return cngNames{}, fmt.Errorf("keystore: %s: CNG key %q is both in use and retired", CNGNamesFile, cng)
		}
	}
	return n, nil
}

// loadCNGNames interprets the result of reading the file: a missing file is
// the empty mapping.
func loadCNGNames(b []byte, readErr error) (cngNames, error) {
	if errors.Is(readErr, fs.ErrNotExist) {
		return newCNGNames(), nil
	}
	if readErr != nil {
		return cngNames{}, fmt.Errorf("keystore: reading %s: %w", CNGNamesFile, readErr)
	}
	return parseCNGNames(b)
}

func (n cngNames) marshal() []byte {
	if n.Keys == nil {
		n.Keys = map[string]string{}
	}
	sort.Strings(n.Retired)
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return append(b, '\n')
}

// cngName is the CNG key that holds the key called name.
func (n cngNames) cngName(name string) string {
	if c, ok := n.Keys[name]; ok {
		return c
	}
	return cngKeyName(name)
}

func (n cngNames) clone() cngNames {
	out := cngNames{Version: cngNamesVersion, Keys: make(map[string]string, len(n.Keys)), Retired: append([]string(nil), n.Retired...)}
	for k, v := range n.Keys {
		out.Keys[k] = v
	}
	return out
}

// withKey maps name to cng.
func (n cngNames) withKey(name, cng string) cngNames {
	out := n.clone()
	out.Keys[name] = cng
	out.Retired = remove(out.Retired, cng)
	return out
}

// withoutKey drops name's entry (its CNG key is deleted by the caller).
func (n cngNames) withoutKey(name string) cngNames {
	out := n.clone()
	delete(out.Keys, name)
	return out
}

// renamed maps to onto from's CNG key and retires to's old one, which it
// returns.
func (n cngNames) renamed(from, to string) (out cngNames, old string) {
	out = n.clone()
	cng := n.cngName(from)
	old = n.cngName(to)
	delete(out.Keys, from)
	out.Keys[to] = cng
	out.Retired = append(remove(out.Retired, old), old)
	return out, old
}

// withoutRetired forgets a retired CNG key once it is deleted.
func (n cngNames) withoutRetired(cng string) cngNames {
	out := n.clone()
	out.Retired = remove(out.Retired, cng)
	return out
}

func remove(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// freshCNGKeyName is a new, unused CNG key name for name: a random suffix
// keeps the key that replaces name in a rotation apart from the old one.
func freshCNGKeyName(name string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return cngKeyName(name) + "-" + hex.EncodeToString(b[:])
}

func cngNamesPath(dir string) string { return filepath.Join(dir, CNGNamesFile) }
