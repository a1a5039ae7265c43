// Package secret holds passwords and key material in a type that will not
// print, log or marshal its content by accident.
//
// A Secret formats as "[REDACTED]" under every fmt verb, in JSON, YAML and
// text marshalling, and in zerolog (which marshals through JSON or
// fmt.Stringer). The only way to get at the bytes is Reveal, which is easy to
// find in review. Wipe zeroes the backing array; every copy of a Secret shares
// that array, so wiping one wipes them all.
package secret

import (
	"crypto/subtle"
	"fmt"
)

// Redacted is what a Secret prints as, whatever the verb.
const Redacted = "[REDACTED]"

// Secret is an opaque byte string. The zero value is an empty secret.
type Secret struct {
	b []byte
}

// New returns a Secret that takes ownership of b. The caller must not use b
// afterwards except through the Secret.
func New(b []byte) Secret { return Secret{b: b} }

// FromString copies s into a new Secret. Go strings are immutable and cannot
// be wiped, so prefer New where the bytes are at hand.
func FromString(s string) Secret { return Secret{b: []byte(s)} }

// Reveal returns the secret's bytes, not a copy. Do not retain or log them.
func (s Secret) Reveal() []byte { return s.b }

// RevealString returns the secret as a string. The string cannot be wiped;
// use it only where an API demands a string.
func (s Secret) RevealString() string { return string(s.b) }

// Len reports the secret's length in bytes. The length is not secret.
func (s Secret) Len() int { return len(s.b) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return len(s.b) == 0 }

// Equal compares two secrets in constant time (for equal lengths).
func (s Secret) Equal(o Secret) bool { return subtle.ConstantTimeCompare(s.b, o.b) == 1 }

// Clone returns an independent copy, which must be wiped separately.
func (s Secret) Clone() Secret {
	if s.b == nil {
		return Secret{}
	}
	return Secret{b: append([]byte(nil), s.b...)}
}

// Wipe zeroes the secret's bytes in place.
func (s Secret) Wipe() { clear(s.b) }

// String implements fmt.Stringer.
func (Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer, for %#v.
func (Secret) GoString() string { return "secret.Secret(" + Redacted + ")" }

// Format implements fmt.Formatter, so that no verb (%x, %d, %q ...) can reach
// the bytes.
func (Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, "secret.Secret("+Redacted+")")
		return
	}
	fmt.Fprint(f, Redacted)
}

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalYAML implements yaml.Marshaler.
func (Secret) MarshalYAML() (any, error) { return Redacted, nil }

// MarshalBinary implements encoding.BinaryMarshaler, so that gob and similar
// encoders do not reach the bytes either.
func (Secret) MarshalBinary() ([]byte, error) { return []byte(Redacted), nil }
