package keystore

import (
	"crypto/ecdh"
	"encoding/binary"
	"fmt"
)

// The byte-level half of the Windows CNG backend. It is OS-neutral so that
// it is unit-tested on every platform; cng_windows.go does the calls.

// CNGKeySDDL is the security descriptor set on the CNG machine key (with
// DACL_SECURITY_INFORMATION): a protected DACL (P: no inherited entries)
// granting generic all (GA) to Local System (SY), which the service runs as,
// and to the built-in Administrators group (BA), and nothing to anyone else.
var CNGKeySDDL = "D:P(A;;GA;;;SY)(A;;GA;;;BA)"

// cngKeyPrefix namespaces the agent's keys in the machine key store.
const cngKeyPrefix = "credagent-"

// cngKeyName is the CNG key name of the key called name.
func cngKeyName(name string) string { return cngKeyPrefix + name }

// BCRYPT_ECCKEY_BLOB magic for a P-256 ECDH public key ("ECK1" read as a
// little-endian ULONG), from bcrypt.h.
const bcryptECDHPublicP256Magic = 0x314B4345

const p256Bytes = 32

// eccPublicBlob encodes an uncompressed SEC 1 P-256 point (0x04 || X || Y)
// as a BCRYPT_ECCPUBLIC_BLOB: the BCRYPT_ECCKEY_BLOB header {ULONG dwMagic;
// ULONG cbKey} in the machine's (little-endian) byte order, then X and Y,
// each cbKey bytes, big-endian.
func eccPublicBlob(pub *ecdh.PublicKey) ([]byte, error) {
	if pub == nil || pub.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("keystore: not a P-256 public key")
	}
	pt := pub.Bytes()
	out := make([]byte, 8, 8+2*p256Bytes)
	binary.LittleEndian.PutUint32(out[0:4], bcryptECDHPublicP256Magic)
	binary.LittleEndian.PutUint32(out[4:8], p256Bytes)
	return append(out, pt[1:]...), nil
}

// parseECCPublicBlob decodes a BCRYPT_ECCPUBLIC_BLOB holding a P-256 ECDH
// public key, checking the magic, the size and that the point is on the
// curve.
func parseECCPublicBlob(b []byte) (*ecdh.PublicKey, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("keystore: ECC public blob of %d bytes", len(b))
	}
	magic := binary.LittleEndian.Uint32(b[0:4])
	cb := binary.LittleEndian.Uint32(b[4:8])
	if magic != bcryptECDHPublicP256Magic {
		return nil, fmt.Errorf("keystore: ECC public blob magic %#08x, want BCRYPT_ECDH_PUBLIC_P256_MAGIC", magic)
	}
	if cb != p256Bytes || len(b) != 8+2*p256Bytes {
		return nil, fmt.Errorf("keystore: ECC public blob with cbKey %d and %d bytes, want 32 and 72", cb, len(b))
	}
	pt := make([]byte, 1+2*p256Bytes)
	pt[0] = 4
	copy(pt[1:], b[8:])
	return ecdh.P256().NewPublicKey(pt)
}

// rawSecretToX turns what NCryptDeriveKey returns for BCRYPT_KDF_RAW_SECRET,
// the shared point's X coordinate in little-endian byte order, into the
// big-endian X that crypto/ecdh returns.
func rawSecretToX(le []byte) ([]byte, error) {
	if len(le) != p256Bytes {
		return nil, fmt.Errorf("keystore: raw secret of %d bytes, want 32", len(le))
	}
	be := make([]byte, p256Bytes)
	for i, c := range le {
		be[p256Bytes-1-i] = c
	}
	return be, nil
}
