package keystore

import (
	"errors"
	"fmt"
)

// Key rotation
//
// A rotation never leaves the machine without a key that can open what is
// on its way to it:
//
//  1. `credagent enroll --rotate` calls Rotate, which creates a second key
//     under PendingName(name) ("machine.next") and keeps the current one.
//     The new registration document goes to the portal.
//  2. Until the portal has re-sealed, deliveries may be sealed to either key.
//     The agent loads both with OpenAll and tries each (Keys.All).
//  3. When a delivery sealed to the pending key has been opened and stored,
//     the agent calls Promote: the pending key is renamed to the current
//     name, atomically replacing (and so destroying) the old key. From then
//     on only the new key exists.
//
// Promote needs a store that can rename keys (Renamer): memory, file, tpm
// and cng can. CNG cannot rename a persisted key, so the cng backend renames
// through a private file that maps key names to CNG keys (cngnames.go) and
// then deletes the old key; without a key store directory it returns
// ErrUnsupported.

// PendingSuffix is appended to a key's name for the key a rotation creates.
const PendingSuffix = ".next"

// PendingName is the name of the key that a rotation of name creates.
func PendingName(name string) string { return name + PendingSuffix }

// Renamer is implemented by stores that can rename a key. Rename must be
// atomic and must replace any key already called to.
type Renamer interface {
	Rename(from, to string) error
}

// Keys are the keys the agent opens deliveries with.
type Keys struct {
	// Current is the enrolled key. It is nil only when it could not be
	// opened (missing or needing re-enrolment) and a pending key exists.
	Current Key
	// Pending is the key a rotation created; nil when no rotation is in
	// progress.
	Pending Key
}

// All returns the keys to try, the current one first.
func (k Keys) All() []Key {
	var out []Key
	for _, key := range []Key{k.Current, k.Pending} {
		if key != nil {
			out = append(out, key)
		}
	}
	return out
}

// OpenAll opens the current key called name and, if a rotation is in
// progress, the pending one. It fails if no key can be used; a current key
// that is missing or needs re-enrolment is tolerated when a pending key
// exists, since the pending key is its replacement.
func OpenAll(s Store, name string) (Keys, error) {
	var ks Keys
	cur, curErr := s.Open(name)
	pend, pendErr := s.Open(PendingName(name))
	switch {
	case pendErr == nil:
		ks.Pending = pend
	case !errors.Is(pendErr, ErrNotFound):
		return Keys{}, fmt.Errorf("keystore.OpenAll: pending key: %w", pendErr)
	}
	switch {
	case curErr == nil:
		ks.Current = cur
	case ks.Pending != nil && (errors.Is(curErr, ErrNotFound) || errors.Is(curErr, ErrNeedsReenroll)):
		// The pending key replaces it.
	default:
		return Keys{}, fmt.Errorf("keystore.OpenAll: %w", curErr)
	}
	return ks, nil
}

// Rotate creates the pending key for name and returns it. If a rotation is
// already in progress it returns the existing pending key and created is
// false.
func Rotate(s Store, name string) (k Key, created bool, err error) {
	next := PendingName(name)
	k, err = s.Create(next)
	if errors.Is(err, ErrExists) {
		k, err = s.Open(next)
		if err != nil {
			return nil, false, fmt.Errorf("keystore.Rotate: %w", err)
		}
		return k, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("keystore.Rotate: %w", err)
	}
	return k, true, nil
}

// Promote ends a rotation: the pending key becomes the key called name, and
// the old key is destroyed. It fails with ErrNotFound if no rotation is in
// progress, and with ErrUnsupported if the store cannot rename keys.
func Promote(s Store, name string) error {
	r, ok := s.(Renamer)
	if !ok {
		return fmt.Errorf("keystore.Promote: %s backend: %w", s.Info().Backend, ErrUnsupported)
	}
	if err := r.Rename(PendingName(name), name); err != nil {
		return fmt.Errorf("keystore.Promote: %w", err)
	}
	return nil
}
