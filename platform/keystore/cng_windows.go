//go:build windows

package keystore

import (
	"crypto/ecdh"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"unsafe"

	"github.com/credagent/credagent/platform/fsutil"

	"golang.org/x/sys/windows"
)

// The cng backend
//
// Keys are persisted CNG machine keys (NCRYPT_MACHINE_KEY_FLAG) named
// "credagent-<name>", in the Microsoft Platform Crypto Provider (the TPM)
// when it opens, else in the Microsoft Software Key Storage Provider. Each
// is an ECDH P-256 key with export policy 0 (the private key can never be
// exported, not even wrapped) and the security descriptor CNGKeySDDL, both
// set before NCryptFinalizeKey so the key never exists without them. (The
// Platform Crypto Provider may refuse the export policy as unsupported; its
// keys cannot leave the TPM anyway, so that refusal is ignored there.)
//
// ECDH: the peer's public key is imported as a BCRYPT_ECCPUBLIC_BLOB into an
// ephemeral key handle, NCryptSecretAgreement makes the secret, and
// NCryptDeriveKey with BCRYPT_KDF_RAW_SECRET returns its X coordinate in
// little-endian order, reversed here to match crypto/ecdh.
//
// CNG cannot rename a persisted key, so this store does not implement
// Renamer and Promote returns ErrUnsupported.

var (
	ncrypt                     = windows.NewLazySystemDLL("ncrypt.dll")
	procOpenStorageProvider    = ncrypt.NewProc("NCryptOpenStorageProvider")
	procCreatePersistedKey     = ncrypt.NewProc("NCryptCreatePersistedKey")
	procSetProperty            = ncrypt.NewProc("NCryptSetProperty")
	procFinalizeKey            = ncrypt.NewProc("NCryptFinalizeKey")
	procOpenKey                = ncrypt.NewProc("NCryptOpenKey")
	procExportKey              = ncrypt.NewProc("NCryptExportKey")
	procImportKey              = ncrypt.NewProc("NCryptImportKey")
	procSecretAgreement        = ncrypt.NewProc("NCryptSecretAgreement")
	procDeriveKey              = ncrypt.NewProc("NCryptDeriveKey")
	procDeleteKey              = ncrypt.NewProc("NCryptDeleteKey")
	procFreeObject             = ncrypt.NewProc("NCryptFreeObject")
	bcryptECDHP256Algorithm    = "ECDH_P256"      // BCRYPT_ECDH_P256_ALGORITHM
	bcryptECCPublicBlob        = "ECCPUBLICBLOB"  // BCRYPT_ECCPUBLIC_BLOB
	bcryptKDFRawSecret         = "TRUNCATE"       // BCRYPT_KDF_RAW_SECRET
	ncryptExportPolicyProperty = "Export Policy"  // NCRYPT_EXPORT_POLICY_PROPERTY
	ncryptSecurityDescrProp    = "Security Descr" // NCRYPT_SECURITY_DESCR_PROPERTY
)

type ncryptHandle uintptr

// secStatus is a failed SECURITY_STATUS from an ncrypt call.
type secStatus struct {
	op   string
	code uint32
}

func (e *secStatus) Error() string {
	return fmt.Sprintf("%s: %v (0x%08X)", e.op, windows.Errno(e.code), e.code)
}

func call(p *windows.LazyProc, op string, args ...uintptr) error {
	if err := p.Find(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	r, _, _ := p.Call(args...)
	if uint32(r) != 0 {
		return &secStatus{op: op, code: uint32(r)}
	}
	return nil
}

func utf16(s string) *uint16 {
	p, err := windows.UTF16PtrFromString(s)
	if err != nil {
		panic(err) // only constant strings and validated names reach here
	}
	return p
}

func freeObject(h ncryptHandle) {
	if h != 0 {
		_ = call(procFreeObject, "NCryptFreeObject", uintptr(h))
	}
}

// CNGStore keeps machine keys in a CNG key storage provider.
type CNGStore struct {
	mu       sync.Mutex
	prov     ncryptHandle
	provName string
	platform bool
	keys     []ncryptHandle // key handles to free on Close
	closed   bool
	dir      string  // where CNGProviderFile records the provider; "" records nothing
	plan     cngPlan // which providers this store may use
}

var _ Store = (*CNGStore)(nil)

// openCNG opens the provider recorded in CNGProviderFile if there is one,
// and only that one: if it cannot be opened the error says so, rather than
// the agent looking for its key in (and creating a new one in) another
// provider. Before the first key, it opens the Platform Crypto Provider (the
// TPM) if it is there, else the Software Key Storage Provider.
func openCNG(opts Options) (Store, error) {
	var recorded []byte
	readErr := fs.ErrNotExist
	if opts.Dir != "" {
		// Read as a private file: it decides where the key is made, so one
		// planted by an ordinary user (who may create files under
		// %ProgramData%) must be refused, not obeyed.
		recorded, readErr = fsutil.ReadPrivateFile(cngProviderPath(opts.Dir), maxKeyFile)
		if fsutil.IsInsecure(readErr) {
			return nil, insecure(readErr)
		}
	}
	plan, err := planCNG(recorded, readErr)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, name := range plan.providers {
		s, err := openCNGProvider(name)
		if err == nil {
			s.platform = name == cngPlatformProvider
			s.dir, s.plan = opts.Dir, plan
			return s, nil
		}
		if plan.sticky {
			return nil, fmt.Errorf("keystore: the machine key is held by the %s, which cannot be opened now (repair it, or re-enrol with credagent enroll --rotate): %w", name, err)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// recordProvider makes the store's provider sticky once it holds a key.
func (s *CNGStore) recordProvider() error {
	if s.plan.sticky || s.dir == "" {
		return nil
	}
	if err := fsutil.MkdirPrivate(s.dir); err != nil {
		return insecure(err)
	}
	if err := fsutil.WritePrivateFile(cngProviderPath(s.dir), []byte(s.provName+"\n")); err != nil {
		return fmt.Errorf("keystore: recording the CNG provider: %w", err)
	}
	s.plan = cngPlan{providers: []string{s.provName}, sticky: true}
	return nil
}

func openAuto(opts Options) (Store, error) { return openCNG(opts) }

func openCNGProvider(name string) (*CNGStore, error) {
	var h ncryptHandle
	if err := call(procOpenStorageProvider, "NCryptOpenStorageProvider",
		uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(utf16(name))), 0); err != nil {
		return nil, err
	}
	return &CNGStore{prov: h, provName: name}, nil
}

// Create implements Store. On a first enrolment where the TPM provider
// opened but cannot make a P-256 ECDH key (no TPM 2.0, no ECC), it falls
// back to the software provider, as auto promises; the provider that made
// the key is then recorded.
func (s *CNGStore) Create(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	k, err := s.create(name)
	if err != nil && s.platform && !s.plan.sticky && len(s.keys) == 0 && !errors.Is(err, ErrExists) {
		soft, serr := openCNGProvider(cngSoftwareProvider)
		if serr == nil {
			freeObject(s.prov)
			s.prov, s.provName, s.platform = soft.prov, soft.provName, false
			k, err = s.create(name)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.recordProvider(); err != nil {
		return nil, err
	}
	return k, nil
}

// create makes and persists the key. The caller holds mu.
func (s *CNGStore) create(name string) (Key, error) {
	var h ncryptHandle
	err := call(procCreatePersistedKey, "NCryptCreatePersistedKey",
		uintptr(s.prov), uintptr(unsafe.Pointer(&h)),
		uintptr(unsafe.Pointer(utf16(bcryptECDHP256Algorithm))),
		uintptr(unsafe.Pointer(utf16(cngKeyName(name)))),
		0, ncryptMachineKeyFlag|ncryptSilentFlag)
	if err != nil {
		return nil, cngErr(err)
	}
	if err := s.finalize(h); err != nil {
		// Not finalized: nothing was persisted; free the handle. A provider
		// may report an existing key (NTE_EXISTS) here rather than at
		// NCryptCreatePersistedKey, hence cngErr.
		freeObject(h)
		return nil, cngErr(err)
	}
	k, err := s.newKey(h)
	if err != nil {
		// The key is persisted but unusable: delete it (which also frees
		// the handle) rather than leave a key that makes every later Create
		// fail with ErrExists.
		if call(procDeleteKey, "NCryptDeleteKey", uintptr(h), deleteKeyFlags(s.platform)) != nil {
			freeObject(h)
		}
		return nil, err
	}
	return k, nil
}

// finalize sets the export policy and the security descriptor, then
// finalizes (persists) the key.
func (s *CNGStore) finalize(h ncryptHandle) error {
	var policy uint32 // no NCRYPT_ALLOW_*_FLAG: the key cannot be exported
	if err := call(procSetProperty, "NCryptSetProperty(Export Policy)",
		uintptr(h), uintptr(unsafe.Pointer(utf16(ncryptExportPolicyProperty))),
		uintptr(unsafe.Pointer(&policy)), unsafe.Sizeof(policy),
		exportPolicyFlags); err != nil {
		var ss *secStatus
		if !errors.As(err, &ss) || !exportPolicyOptional(s.platform, ss.code) {
			return err
		}
		// A TPM key cannot be exported whatever this property says.
	}
	sd, err := windows.SecurityDescriptorFromString(CNGKeySDDL)
	if err != nil {
		return fmt.Errorf("security descriptor %q: %w", CNGKeySDDL, err)
	}
	// SecurityDescriptorFromString returns a self-relative descriptor, the
	// form NCryptSetProperty expects.
	if err := call(procSetProperty, "NCryptSetProperty(Security Descr)",
		uintptr(h), uintptr(unsafe.Pointer(utf16(ncryptSecurityDescrProp))),
		uintptr(unsafe.Pointer(sd)), uintptr(sd.Length()),
		securityDescrFlags); err != nil {
		return err
	}
	return call(procFinalizeKey, "NCryptFinalizeKey", uintptr(h), ncryptSilentFlag)
}

// Open implements Store.
func (s *CNGStore) Open(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	h, err := s.openKey(name)
	if err != nil {
		return nil, err
	}
	k, err := s.newKey(h)
	if err != nil {
		freeObject(h)
		return nil, fmt.Errorf("%w: %v", ErrNeedsReenroll, err)
	}
	return k, nil
}

func (s *CNGStore) openKey(name string) (ncryptHandle, error) {
	var h ncryptHandle
	err := call(procOpenKey, "NCryptOpenKey",
		uintptr(s.prov), uintptr(unsafe.Pointer(&h)),
		uintptr(unsafe.Pointer(utf16(cngKeyName(name)))),
		0, ncryptMachineKeyFlag|ncryptSilentFlag)
	if err != nil {
		return 0, cngErr(err)
	}
	return h, nil
}

// newKey exports the public half of h.
func (s *CNGStore) newKey(h ncryptHandle) (*cngKey, error) {
	var n uint32
	if err := call(procExportKey, "NCryptExportKey(size)",
		uintptr(h), 0, uintptr(unsafe.Pointer(utf16(bcryptECCPublicBlob))), 0,
		0, 0, uintptr(unsafe.Pointer(&n)), ncryptSilentFlag); err != nil {
		return nil, err
	}
	if n == 0 || n > 1024 {
		return nil, fmt.Errorf("NCryptExportKey: public blob of %d bytes", n)
	}
	blob := make([]byte, n)
	if err := call(procExportKey, "NCryptExportKey",
		uintptr(h), 0, uintptr(unsafe.Pointer(utf16(bcryptECCPublicBlob))), 0,
		uintptr(unsafe.Pointer(&blob[0])), uintptr(n), uintptr(unsafe.Pointer(&n)), ncryptSilentFlag); err != nil {
		return nil, err
	}
	pub, err := parseECCPublicBlob(blob[:n])
	if err != nil {
		return nil, err
	}
	s.keys = append(s.keys, h)
	return &cngKey{s: s, h: h, pub: pub, id: KeyID(pub)}, nil
}

// Delete implements Store.
func (s *CNGStore) Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	h, err := s.openKey(name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	// On success NCryptDeleteKey also frees the handle.
	if err := call(procDeleteKey, "NCryptDeleteKey", uintptr(h), deleteKeyFlags(s.platform)); err != nil {
		freeObject(h)
		return err
	}
	return nil
}

// Info implements Store.
func (s *CNGStore) Info() Info {
	b := InfoCNGSoftware
	if s.platform {
		b = InfoCNGPlatform
	}
	return Info{Backend: b, HardwareBacked: s.platform, Detail: s.provName}
}

// Close frees the key handles opened from this store and the provider
// handle. Keys from this store stop working.
func (s *CNGStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, h := range s.keys {
		freeObject(h)
	}
	s.keys = nil
	freeObject(s.prov)
	return nil
}

// cngErr maps the SECURITY_STATUS codes the contract cares about.
func cngErr(err error) error {
	var ss *secStatus
	if !errors.As(err, &ss) {
		return err
	}
	switch ss.code {
	case nteBadKeyset, nteNotFound:
		return ErrNotFound
	case nteExists:
		return ErrExists
	}
	// TPM (0x8028xxxx) and Platform Crypto Provider (0x8029xxxx) errors on
	// an existing key: the TPM was cleared or the key no longer loads.
	if ss.code&0xFFFF0000 == 0x80280000 || ss.code&0xFFFF0000 == 0x80290000 {
		return fmt.Errorf("%w: %v", ErrNeedsReenroll, err)
	}
	return err
}

// cngKey is an open CNG key handle.
type cngKey struct {
	s   *CNGStore
	h   ncryptHandle
	pub *ecdh.PublicKey
	id  string
}

var _ Key = (*cngKey)(nil)

func (k *cngKey) PublicKey() *ecdh.PublicKey { return k.pub }
func (k *cngKey) Curve() ecdh.Curve          { return ecdh.P256() }
func (k *cngKey) ID() string                 { return k.id }
func (k *cngKey) String() string             { return "keystore.Key(cng " + k.id + ")" }

// ECDH returns the X coordinate of the shared point, big-endian, as
// crypto/ecdh does.
func (k *cngKey) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	blob, err := eccPublicBlob(peer)
	if err != nil {
		return nil, err
	}
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	if k.s.closed {
		return nil, errClosed
	}
	var hPeer ncryptHandle
	if err := call(procImportKey, "NCryptImportKey",
		uintptr(k.s.prov), 0, uintptr(unsafe.Pointer(utf16(bcryptECCPublicBlob))), 0,
		uintptr(unsafe.Pointer(&hPeer)), uintptr(unsafe.Pointer(&blob[0])), uintptr(len(blob)),
		ncryptSilentFlag); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer freeObject(hPeer)
	var hSecret ncryptHandle
	if err := call(procSecretAgreement, "NCryptSecretAgreement",
		uintptr(k.h), uintptr(hPeer), uintptr(unsafe.Pointer(&hSecret)), ncryptSilentFlag); err != nil {
		return nil, fmt.Errorf("keystore: %w", cngErr(err))
	}
	defer freeObject(hSecret)
	le := make([]byte, p256Bytes)
	var n uint32
	if err := call(procDeriveKey, "NCryptDeriveKey",
		uintptr(hSecret), uintptr(unsafe.Pointer(utf16(bcryptKDFRawSecret))), 0,
		uintptr(unsafe.Pointer(&le[0])), uintptr(len(le)), uintptr(unsafe.Pointer(&n)), 0); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer clear(le)
	return rawSecretToX(le[:n])
}
