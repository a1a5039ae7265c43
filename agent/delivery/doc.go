// Package delivery is the sealed, signed delivery format by which the portal
// gives a machine its applications (certificate and private key), its
// machine-group keys, its CCP stores and credentials, and their revocations.
//
// The format is specified in SPEC.md next to this file; the test vectors in
// testdata/vectors are part of the specification.
//
// # Security properties
//
//   - Confidentiality: secret content is sealed with HPKE (RFC 9180) base
//     mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, to the
//     machine's key (held in a TPM, CNG or a 0600 file) or to a group key
//     that was itself sealed to the machine's key.
//   - Binding: the HPKE info carries the version, kind, recipient key ID,
//     delivery ID, sequence, address and target, so a sealed payload moved
//     into another delivery does not open.
//   - Authenticity: every delivery is signed by a pinned portal key (ECDSA
//     P-256 or Ed25519) over the exact header bytes and the payload's hash.
//     Anyone can seal to a public key, so Open refuses to decrypt a delivery
//     whose signature has not been verified.
//   - No rollback: each object has a sequence number that must increase; the
//     agent (agent/inbox) enforces it and reports ErrReplay.
//
// # Use
//
// The portal side calls Create with a Header and a Content, then Marshal.
// The agent side calls Parse, Verify, checks the address, the expiry and the
// sequence, then Open, and for an application, Application.Certificate.
// Every error wraps one of the Err sentinels; Reason maps it to a short code.
package delivery
