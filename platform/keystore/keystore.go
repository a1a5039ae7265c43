// Package keystore holds the machine key pair inside the operating system's
// key store and never exports the private half.
//
// The machine key is a P-256 key used for ECDH only: the portal seals
// deliveries to its public key with HPKE (DHKEM(P-256, HKDF-SHA256)), and the
// agent opens them by asking the store to do the ECDH step. A Key satisfies
// crypto/ecdh.KeyExchanger, so it plugs straight into
// crypto/hpke.NewDHKEMPrivateKey.
//
// Backends:
//   - tpm (Linux): a TPM 2.0 key under the storage root key; only its
//     TPM-wrapped blobs are kept on disk, and ECDH runs in the TPM.
//   - file (Linux): the key in a root-only 0600 file, checked on every open.
//   - cng (Windows): a CNG machine key in the Microsoft Platform Crypto
//     Provider (TPM) when present, else the Software Key Storage Provider,
//     with export policy none.
//   - memory: tests and benchmarks only.
//
// Open(Options) picks the backend (auto or forced); each backend's file
// describes its storage format. Errors follow the sentinels below: a missing
// key is ErrNotFound, a key whose storage others can reach is ErrInsecure
// (never used), and a key that exists but no longer works is
// ErrNeedsReenroll (never a panic), so the agent can start in a "needs
// re-enrolment" state instead of crash-looping. A key is replaced without a
// gap with Rotate, OpenAll and Promote (see rotate.go).
//
// Every backend passes the same contract suite (keystoretest).
package keystore

import (
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// Key is an opaque machine key. The private half never leaves its store.
type Key interface {
	ecdh.KeyExchanger
	// ID is the key's stable identifier: KeyID of its public key.
	ID() string
}

// Store creates, opens and deletes keys by name in one backend.
type Store interface {
	// Create makes a new key called name. It fails with ErrExists if one is
	// already there.
	Create(name string) (Key, error)
	// Open loads the key called name. It fails with ErrNotFound if there is
	// none, and with an error wrapping ErrNeedsReenroll if the key exists but
	// can no longer be used (a cleared TPM, a blob that will not load).
	Open(name string) (Key, error)
	// Delete removes the key called name. Deleting a missing key is not an
	// error.
	Delete(name string) error
	// Info describes the backend.
	Info() Info
	// Close releases the backend (a TPM connection, a provider handle).
	Close() error
}

// Info describes a backend, for status and doctor.
type Info struct {
	Backend        string // "tpm", "file", "cng-platform", "cng-software", "memory"
	HardwareBacked bool
	Detail         string // device, provider name or directory
}

var (
	// ErrNotFound means no key of that name exists.
	ErrNotFound = errors.New("keystore: key not found")
	// ErrExists means a key of that name already exists.
	ErrExists = errors.New("keystore: key already exists")
	// ErrNeedsReenroll means the key exists but cannot be used any more; the
	// machine must be enrolled again.
	ErrNeedsReenroll = errors.New("keystore: key unusable, machine needs re-enrolment")
	// ErrInsecure means the key's storage is readable by others or is not
	// what it should be (a symlink, a foreign owner).
	ErrInsecure = errors.New("keystore: key storage is not private")

	// errClosed is what a closed store, and its keys, answer.
	errClosed = errors.New("keystore: store is closed")
)

// KeyID is the stable identifier of a P-256 public key: the first 16 bytes of
// SHA-256 over its uncompressed SEC 1 encoding, in lowercase hex.
func KeyID(pub *ecdh.PublicKey) string {
	sum := sha256.Sum256(pub.Bytes())
	return hex.EncodeToString(sum[:16])
}

// Fingerprint is the full SHA-256 of the public key, grouped for a person to
// compare: "ab12 cd34 ...".
func Fingerprint(pub *ecdh.PublicKey) string {
	sum := sha256.Sum256(pub.Bytes())
	h := hex.EncodeToString(sum[:])
	out := make([]byte, 0, len(h)+len(h)/4)
	for i := 0; i < len(h); i += 4 {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, h[i:i+4]...)
	}
	return string(out)
}
