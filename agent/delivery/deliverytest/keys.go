// Package deliverytest gives tests deterministic keys, made as
// agent/delivery/SPEC.md ("Test vectors") states: each private scalar or
// seed is the SHA-256 of a fixed string, so another implementation of the
// format can rebuild them.
package deliverytest

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
)

// Seed is SHA-256 of s: the private scalar or seed of the key named s.
func Seed(s string) []byte { sum := sha256.Sum256([]byte(s)); return sum[:] }

// ECDHKey is the P-256 ECDH key named s. It panics if the seed is not a
// valid scalar, which for SHA-256 outputs does not happen in practice.
func ECDHKey(s string) *ecdh.PrivateKey {
	k, err := ecdh.P256().NewPrivateKey(Seed(s))
	if err != nil {
		panic(err)
	}
	return k
}

// ECDSAKey is the P-256 ECDSA key named s.
func ECDSAKey(s string) *ecdsa.PrivateKey {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), Seed(s))
	if err != nil {
		panic(err)
	}
	return k
}
