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

// ncrypt.h flags and SECURITY_STATUS values, and winnt.h's
// DACL_SECURITY_INFORMATION, kept here so that the flag choices below are
// tested on every platform.
const (
	ncryptSilentFlag        = 0x00000040 // NCRYPT_SILENT_FLAG
	ncryptMachineKeyFlag    = 0x00000020 // NCRYPT_MACHINE_KEY_FLAG
	ncryptPersistFlag       = 0x80000000 // NCRYPT_PERSIST_FLAG
	ncryptImplHardwareFlag  = 0x00000001 // NCRYPT_IMPL_HARDWARE_FLAG
	daclSecurityInformation = 0x00000004 // DACL_SECURITY_INFORMATION

	nteBadKeyset    = 0x80090016 // NTE_BAD_KEYSET: no such key
	nteExists       = 0x8009000F // NTE_EXISTS
	nteNotFound     = 0x80090011 // NTE_NOT_FOUND
	nteNotSupported = 0x80090029 // NTE_NOT_SUPPORTED
)

// securityDescrFlags is the dwFlags of NCryptSetProperty for
// NCRYPT_SECURITY_DESCR_PROPERTY: which part of the descriptor is set (the
// DACL). No NCRYPT_PERSIST_FLAG: the descriptor is the key's access control,
// which the provider always stores, and Windows' own code that sets a
// descriptor on a Platform Crypto Provider key before NCryptFinalizeKey
// (Autopilot's tpmoperations) passes DACL_SECURITY_INFORMATION alone.
const securityDescrFlags = daclSecurityInformation | ncryptSilentFlag

// createKeyFlags is the dwFlags of NCryptCreatePersistedKey: a machine key,
// and nothing else. NCRYPT_SILENT_FLAG is not among the flags that function
// documents (NCRYPT_MACHINE_KEY_FLAG, NCRYPT_OVERWRITE_KEY_FLAG and the VBS
// flags), and a provider that rejected it with NTE_BAD_FLAGS would look
// like a provider that cannot make the key. No NCRYPT_OVERWRITE_KEY_FLAG: an
// existing key must never be replaced by accident.
const createKeyFlags = ncryptMachineKeyFlag

// keyIsHardware reads NCRYPT_IMPL_TYPE_PROPERTY: whether the key itself
// says it is implemented in hardware, whatever provider it was asked of.
func keyIsHardware(implType uint32) bool { return implType&ncryptImplHardwareFlag != 0 }

// exportPolicyFlags is the dwFlags of NCryptSetProperty for
// NCRYPT_EXPORT_POLICY_PROPERTY: stored with the key, as .NET's
// CngKey.Create does for CngKeyCreationParameters.ExportPolicy.
const exportPolicyFlags = ncryptPersistFlag | ncryptSilentFlag

// deleteKeyFlags is the dwFlags of NCryptDeleteKey. NCRYPT_SILENT_FLAG is
// documented for it, but the Platform Crypto Provider has been seen to
// refuse it with NTE_BAD_FLAGS (and go-attestation deletes PCP keys with
// 0), so it is left out there; a service has no desktop for a prompt
// anyway.
func deleteKeyFlags(platform bool) uintptr {
	if platform {
		return 0
	}
	return ncryptSilentFlag
}

// exportPolicyOptional reports whether a failure to set the export policy
// may be ignored: only on the Platform Crypto Provider, whose keys live in
// the TPM and cannot be exported whatever the property says, and only when
// the provider says it does not support the property.
func exportPolicyOptional(platform bool, status uint32) bool {
	return platform && status == nteNotSupported
}

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
