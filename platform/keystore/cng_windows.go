//go:build windows

package keystore

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/credagent/credagent/platform/fsutil"
	"github.com/credagent/credagent/platform/winver"

	"golang.org/x/sys/windows"
)

// The cng backend
//
// Keys are persisted CNG machine keys (NCRYPT_MACHINE_KEY_FLAG), in the
// Microsoft Platform Crypto Provider (the TPM) when it opens and can make
// and use the key, else in the Microsoft Software Key Storage Provider. Each
// is an ECDH P-256 key with export policy 0 (the private key can never be
// exported, not even wrapped) and the security descriptor CNGKeySDDL, both
// set before NCryptFinalizeKey so the key never exists without them. (The
// Platform Crypto Provider may refuse the export policy as unsupported; its
// keys cannot leave the TPM anyway, so that refusal is ignored there.)
//
// A provider must be registered (NCryptEnumStorageProviders lists it): a
// name that merely "opens" (Wine's stub opens any name) is refused with
// ErrProviderUnusable. Whether a key is hardware-backed is what the key says
// (NCRYPT_IMPL_TYPE_PROPERTY), not which provider was asked for.
//
// A new key is checked before the provider is recorded: an ECDH with it
// must give what crypto/ecdh computes from its public key (a known answer),
// since Microsoft does not document which key derivations the Platform
// Crypto Provider supports. The first key moves to the software provider
// only when the TPM's provider cannot do it (cngUnsupported, or a wrong
// answer), and the reason is kept in CNGProviderFile for status; a transient
// TPM error is retried with back-off (cngRetryDelays), never a reason to
// give up the TPM.
//
// ECDH: the peer's public key is imported as a BCRYPT_ECCPUBLIC_BLOB into an
// ephemeral key handle, NCryptSecretAgreement makes the secret, and
// NCryptDeriveKey with BCRYPT_KDF_RAW_SECRET returns its X coordinate in
// little-endian order, reversed here to match crypto/ecdh.
//
// CNG cannot rename a persisted key: logical names go through CNGNamesFile
// (cngnames.go), so Rename switches a mapping and then deletes the old key.

var (
	ncrypt                     = windows.NewLazySystemDLL("ncrypt.dll")
	procOpenStorageProvider    = ncrypt.NewProc("NCryptOpenStorageProvider")
	procEnumStorageProviders   = ncrypt.NewProc("NCryptEnumStorageProviders")
	procFreeBuffer             = ncrypt.NewProc("NCryptFreeBuffer")
	procCreatePersistedKey     = ncrypt.NewProc("NCryptCreatePersistedKey")
	procGetProperty            = ncrypt.NewProc("NCryptGetProperty")
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
	ncryptImplTypeProperty     = "Impl Type"      // NCRYPT_IMPL_TYPE_PROPERTY
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

// call calls an ncrypt function and turns a failed SECURITY_STATUS into a
// *secStatus.
//
// Callers pass out-parameters as uintptr(unsafe.Pointer(&local)) in the
// argument list. The unsafe.Pointer rules keep such a conversion valid only
// in the call expression of a function the compiler treats like
// syscall.Syscall; //go:uintptrescapes makes call one (as LazyProc.Call
// is), so the pointed-to variables are moved to the heap and stay put. A
// plain wrapper would leave them on the goroutine's stack, which may be
// copied (grown) before ncrypt writes, and ncrypt would then write into the
// old stack. TestCallOutParamsSurviveStackGrowth guards this.
//
//go:uintptrescapes
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

// cngErr sorts an ncrypt failure into the store's sentinels (cngerr.go).
func cngErr(err error) error {
	var ss *secStatus
	if !errors.As(err, &ss) {
		return err
	}
	return classError(classifyCNG(ss.code), err)
}

// getDWORD reads a DWORD property of a provider or key handle.
func getDWORD(h ncryptHandle, prop string) (uint32, error) {
	var v, n uint32
	if err := call(procGetProperty, "NCryptGetProperty("+prop+")",
		uintptr(h), uintptr(unsafe.Pointer(utf16(prop))),
		uintptr(unsafe.Pointer(&v)), unsafe.Sizeof(v), uintptr(unsafe.Pointer(&n)), ncryptSilentFlag); err != nil {
		return 0, err
	}
	if n != uint32(unsafe.Sizeof(v)) {
		return 0, fmt.Errorf("NCryptGetProperty(%s): %d bytes, want 4", prop, n)
	}
	return v, nil
}

// ncryptProviderName is NCryptProviderName.
type ncryptProviderName struct {
	name    *uint16
	comment *uint16
}

var errWineNoProviderList = errors.New("Wine does not implement NCryptEnumStorageProviders")

// registeredProviders lists the key storage providers registered on this
// machine.
func registeredProviders() ([]string, error) {
	var count uint32
	var list *ncryptProviderName
	if err := call(procEnumStorageProviders, "NCryptEnumStorageProviders",
		uintptr(unsafe.Pointer(&count)), uintptr(unsafe.Pointer(&list)), ncryptSilentFlag); err != nil {
		return nil, err
	}
	if list == nil {
		return nil, nil
	}
	defer call(procFreeBuffer, "NCryptFreeBuffer", uintptr(unsafe.Pointer(list)))
	var out []string
	for _, p := range unsafe.Slice(list, count) {
		out = append(out, windows.UTF16PtrToString(p.name))
	}
	return out, nil
}

// CNGStore keeps machine keys in a CNG key storage provider.
type CNGStore struct {
	mu       sync.Mutex
	prov     ncryptHandle
	provName string
	platform bool
	keys     []ncryptHandle // key handles to free on Close
	closed   bool
	dir      string  // where CNGProviderFile and CNGNamesFile live; "" records nothing
	plan     cngPlan // which providers this store may use
	why      string  // why the key is not in the TPM's provider, when it is not
	// hardware is what the last key opened or created says of itself
	// (NCRYPT_IMPL_TYPE_PROPERTY); keyKnown says one was.
	hardware, keyKnown bool
}

var (
	_ Store   = (*CNGStore)(nil)
	_ Renamer = (*CNGStore)(nil)
)

// openCNG opens the provider recorded in CNGProviderFile if there is one,
// and only that one: if it cannot be opened the error says so, rather than
// the agent looking for its key in (and creating a new one in) another
// provider. Before the first key, it opens the Platform Crypto Provider (the
// TPM) if it is there and usable, else the Software Key Storage Provider.
func openCNG(opts Options) (Store, error) {
	var recorded []byte
	readErr := fs.ErrNotExist
	if opts.Dir != "" {
		// Read as a private file: it decides where the key is made, so one
		// planted by an ordinary user (who may create files under
		// %ProgramData%) must be refused, not obeyed.
		recorded, readErr = fsutil.ReadPrivateFile(cngProviderPath(opts.Dir), maxKeyFileBytes)
		if fsutil.IsInsecure(readErr) {
			return nil, insecure(readErr)
		}
	}
	plan, err := planCNG(recorded, readErr)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range plan.providers {
		s, err := openCNGProvider(name)
		if err == nil {
			s.platform = name == cngPlatformProvider
			s.dir, s.plan, s.why = opts.Dir, plan, plan.why
			if !plan.sticky && !s.platform && len(errs) > 0 {
				s.why = "the " + cngPlatformProvider + " is not usable: " + errs[0].Error()
			}
			s.deleteRetired()
			return s, nil
		}
		if plan.sticky {
			return nil, fmt.Errorf("keystore: the machine key is held by the %s, which cannot be opened now (repair it, or re-enrol with credagent enroll --rotate): %w", name, err)
		}
		errs = append(errs, err)
		if !errors.Is(err, ErrProviderUnusable) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no CNG key storage provider works here: %w", errors.Join(errs...))
}

// recordProvider makes the store's provider sticky once it holds a key.
func (s *CNGStore) recordProvider() error {
	if s.plan.sticky || s.dir == "" {
		return nil
	}
	if err := fsutil.MkdirPrivate(s.dir); err != nil {
		return insecure(err)
	}
	if err := fsutil.WritePrivateFile(cngProviderPath(s.dir), cngProviderRecord(s.provName, s.why)); err != nil {
		return fmt.Errorf("keystore: recording the CNG provider: %w", err)
	}
	s.plan = cngPlan{providers: []string{s.provName}, sticky: true, why: s.why}
	return nil
}

func openAuto(opts Options) (Store, error) { return openCNG(opts) }

// openCNGProvider opens the provider called name and makes sure it is a
// registered one: NCryptOpenStorageProvider alone is not proof (Wine's stub
// opens any name).
func openCNGProvider(name string) (*CNGStore, error) {
	var h ncryptHandle
	if err := call(procOpenStorageProvider, "NCryptOpenStorageProvider",
		uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(utf16(name))), 0); err != nil {
		var ss *secStatus
		if errors.As(err, &ss) && openTransient(ss.code) {
			return nil, fmt.Errorf("%w: %w", ErrTransient, err)
		}
		return nil, fmt.Errorf("%w: %q: %w", ErrProviderUnusable, name, err)
	}
	// Wine exports NCryptEnumStorageProviders as a stub that aborts the
	// process when called; there, only the provider's own answer counts.
	names, lerr := []string(nil), errWineNoProviderList
	if !winver.IsWine() {
		names, lerr = registeredProviders()
	}
	if lerr == nil {
		for _, n := range names {
			if strings.EqualFold(n, name) {
				return &CNGStore{prov: h, provName: name}, nil
			}
		}
		freeObject(h)
		return nil, fmt.Errorf("%w: %q is not a key storage provider of this machine (registered: %s)", ErrProviderUnusable, name, strings.Join(names, ", "))
	}
	// The list is not available: a real provider answers for its own
	// implementation type.
	if _, perr := getDWORD(h, ncryptImplTypeProperty); perr != nil {
		freeObject(h)
		return nil, fmt.Errorf("%w: %q opened, but the providers cannot be listed (%v) and it does not answer (%v): it is missing or a stub", ErrProviderUnusable, name, lerr, perr)
	}
	return &CNGStore{prov: h, provName: name}, nil
}

// cngLockWait bounds how long a change to the store waits for another
// process's change to end. Making a key in a TPM, with the retries of a
// busy one, can take seconds.
const cngLockWait = 2 * time.Minute

// lockNames takes CNGLockFile's lock, for a read-change-write of
// CNGNamesFile or CNGProviderFile, waiting up to wait for another process
// that holds it; unlock gives it back. The caller holds mu (or owns the
// store alone). Without a directory there is no file to share, and nothing
// to lock.
func (s *CNGStore) lockNames(wait time.Duration) (unlock func(), err error) {
	if s.dir == "" {
		return func() {}, nil
	}
	if err := fsutil.MkdirPrivate(s.dir); err != nil {
		return nil, insecure(err)
	}
	l, err := fsutil.LockPrivate(filepath.Join(s.dir, CNGLockFile), wait)
	switch {
	case fsutil.IsInsecure(err):
		return nil, insecure(err)
	case errors.Is(err, fsutil.ErrLocked):
		return nil, fmt.Errorf("keystore: another credagent process (the service, or an enroll) has been changing the key store for %v; try again once it is done: %w", wait, err)
	case err != nil:
		return nil, fmt.Errorf("keystore: %w", err)
	}
	return func() { _ = l.Unlock() }, nil
}

// recheckProvider is for Create, under the lock, before a first key: if
// another process has recorded a provider since this store was opened, this
// store must use that one, or the two would make the machine key in two
// providers. The caller holds mu and the lock.
func (s *CNGStore) recheckProvider() error {
	if s.plan.sticky || s.dir == "" {
		return nil
	}
	recorded, readErr := fsutil.ReadPrivateFile(cngProviderPath(s.dir), maxKeyFileBytes)
	if fsutil.IsInsecure(readErr) {
		return insecure(readErr)
	}
	plan, err := planCNG(recorded, readErr)
	if err != nil || !plan.sticky {
		return err
	}
	if plan.providers[0] != s.provName {
		return fmt.Errorf("keystore: another credagent process made the machine key in the %s while this one had the %s open; run the command again", plan.providers[0], s.provName)
	}
	s.plan = plan
	return nil
}

// loadNames reads CNGNamesFile; without a directory there is none.
func (s *CNGStore) loadNames() (cngNames, error) {
	if s.dir == "" {
		return newCNGNames(), nil
	}
	b, err := fsutil.ReadPrivateFile(cngNamesPath(s.dir), maxKeyFileBytes)
	if fsutil.IsInsecure(err) {
		return cngNames{}, insecure(err)
	}
	return loadCNGNames(b, err)
}

// saveNames replaces CNGNamesFile atomically.
func (s *CNGStore) saveNames(n cngNames) error {
	if err := fsutil.MkdirPrivate(s.dir); err != nil {
		return insecure(err)
	}
	if err := fsutil.WritePrivateFile(cngNamesPath(s.dir), n.marshal()); err != nil {
		return fmt.Errorf("keystore: writing %s: %w", CNGNamesFile, err)
	}
	return nil
}

// deleteRetired deletes the CNG keys a rotation retired but could not
// delete then. Best effort: what fails stays listed for next time.
func (s *CNGStore) deleteRetired() {
	if names, err := s.loadNames(); err != nil || len(names.Retired) == 0 {
		return
	}
	// Another process changing the store now may be at the same list: let
	// it, and leave what is listed for next time.
	unlock, err := s.lockNames(0)
	if err != nil {
		return
	}
	defer unlock()
	names, err := s.loadNames() // again, under the lock
	if err != nil || len(names.Retired) == 0 {
		return
	}
	for _, cng := range names.Retired {
		if err := s.deleteCNG(cng); err == nil || errors.Is(err, ErrNotFound) {
			names = names.withoutRetired(cng)
		}
	}
	_ = s.saveNames(names)
}

// Create implements Store. On a first enrolment where the TPM provider
// opened but cannot make or use a P-256 ECDH key (no TPM 2.0, no ECC, a
// wrong known answer), it falls back to the software provider, as auto
// promises, and keeps the reason; the provider that made the key is then
// recorded.
func (s *CNGStore) Create(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	unlock, err := s.lockNames(cngLockWait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.recheckProvider(); err != nil {
		return nil, err
	}
	names, err := s.loadNames()
	if err != nil {
		return nil, err
	}
	cng := cngKeyName(name)
	if s.dir != "" {
		cng = freshCNGKeyName(name)
	}
	attempt := func() (*cngKey, error) {
		// An existing key of that name, mapped or from before the mapping.
		if h, err := s.openKey(names.cngName(name)); err == nil {
			freeObject(h)
			return nil, fmt.Errorf("%w: %s", ErrExists, name)
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return s.createChecked(cng)
	}
	k, err := attempt()
	if cngCreateFallback(err, s.plan.sticky, s.platform && len(s.keys) == 0) {
		soft, serr := openCNGProvider(cngSoftwareProvider)
		if serr != nil {
			return nil, fmt.Errorf("%w (and the software provider: %v)", err, serr)
		}
		freeObject(s.prov)
		s.prov, s.provName, s.platform = soft.prov, soft.provName, false
		s.why = "the " + cngPlatformProvider + " could not make or use the key: " + err.Error()
		k, err = attempt()
	}
	if err != nil {
		return nil, err
	}
	if s.dir != "" {
		if err := s.saveNames(names.withKey(name, cng)); err != nil {
			s.destroy(k)
			return nil, err
		}
	}
	if err := s.recordProvider(); err != nil {
		return nil, err
	}
	return k, nil
}

// createChecked makes the key called cng, retrying transient failures, and
// checks it with a known-answer ECDH. A key that fails the check is deleted.
// The caller holds mu.
func (s *CNGStore) createChecked(cng string) (*cngKey, error) {
	var k *cngKey
	err := retryTransient(cngRetryDelays, time.Sleep, func() error {
		var err error
		k, err = s.create(cng)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := knownAnswerECDH(k); err != nil {
		s.destroy(k)
		return nil, err
	}
	return k, nil
}

// knownAnswerECDH checks k's ECDH against crypto/ecdh: the secret with a
// fresh peer key must equal the one the peer computes from k's public key,
// which is what opening a delivery sealed to k needs.
func knownAnswerECDH(k *cngKey) error {
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	want, err := peer.ECDH(k.pub)
	if err != nil {
		return err
	}
	var got []byte
	err = retryTransient(cngRetryDelays, time.Sleep, func() error {
		var err error
		got, err = k.ecdhLocked(peer.PublicKey())
		return err
	})
	if err != nil {
		return fmt.Errorf("keystore: ECDH with the new key: %w", err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return fmt.Errorf("%w: ECDH with the new key gives a wrong answer", ErrProviderUnusable)
	}
	return nil
}

// destroy deletes a key this store just made. The caller holds mu.
func (s *CNGStore) destroy(k *cngKey) {
	s.forget(k.h)
	if call(procDeleteKey, "NCryptDeleteKey", uintptr(k.h), deleteKeyFlags(s.platform)) != nil {
		freeObject(k.h)
	}
}

// forget drops h from the handles Close frees.
func (s *CNGStore) forget(h ncryptHandle) {
	for i, x := range s.keys {
		if x == h {
			s.keys = append(s.keys[:i], s.keys[i+1:]...)
			return
		}
	}
}

// create makes and persists the key called cng. The caller holds mu.
func (s *CNGStore) create(cng string) (*cngKey, error) {
	var h ncryptHandle
	err := call(procCreatePersistedKey, "NCryptCreatePersistedKey",
		uintptr(s.prov), uintptr(unsafe.Pointer(&h)),
		uintptr(unsafe.Pointer(utf16(bcryptECDHP256Algorithm))),
		uintptr(unsafe.Pointer(utf16(cng))),
		0, createKeyFlags)
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
		return nil, cngErr(err)
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
	names, err := s.loadNames()
	if err != nil {
		return nil, err
	}
	var k *cngKey
	err = retryTransient(cngRetryDelays, time.Sleep, func() error {
		h, err := s.openKey(names.cngName(name))
		if err != nil {
			return err
		}
		if k, err = s.newKey(h); err != nil {
			freeObject(h)
			err = cngErr(err)
			if errors.Is(err, ErrTransient) || errors.Is(err, ErrProviderUnusable) {
				return err
			}
			return fmt.Errorf("%w: %v", ErrNeedsReenroll, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// openKey opens the CNG key called cng. A missing key is ErrNotFound
// (NTE_BAD_KEYSET, NTE_NO_KEY); NTE_NOT_SUPPORTED and the like say this
// provider cannot open keys at all (ErrProviderUnusable), which is neither
// "no key" nor a key.
func (s *CNGStore) openKey(cng string) (ncryptHandle, error) {
	var h ncryptHandle
	err := call(procOpenKey, "NCryptOpenKey",
		uintptr(s.prov), uintptr(unsafe.Pointer(&h)),
		uintptr(unsafe.Pointer(utf16(cng))),
		0, ncryptMachineKeyFlag|ncryptSilentFlag)
	if err != nil {
		err = cngErr(err)
		if errors.Is(err, ErrProviderUnusable) {
			return 0, fmt.Errorf("keystore: the %s cannot open keys here: %w", s.provName, err)
		}
		return 0, err
	}
	if h == 0 {
		return 0, fmt.Errorf("%w: NCryptOpenKey succeeded without a key handle", ErrProviderUnusable)
	}
	return h, nil
}

// newKey exports the public half of h and reads what the key says of its
// implementation.
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
	// A key that does not say is not counted as hardware.
	impl, err := getDWORD(h, ncryptImplTypeProperty)
	s.hardware, s.keyKnown = err == nil && keyIsHardware(impl), true
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
	unlock, err := s.lockNames(cngLockWait)
	if err != nil {
		return err
	}
	defer unlock()
	names, err := s.loadNames()
	if err != nil {
		return err
	}
	if err := s.deleteCNG(names.cngName(name)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if _, mapped := names.Keys[name]; mapped {
		return s.saveNames(names.withoutKey(name))
	}
	return nil
}

// deleteCNG deletes the CNG key called cng. The caller holds mu (or owns
// the store alone).
func (s *CNGStore) deleteCNG(cng string) error {
	h, err := s.openKey(cng)
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

// Rename implements Renamer: to now names from's key, in one atomic
// replacement of CNGNamesFile, and to's old key is then deleted. If that
// deletion fails the key stays listed as retired and is deleted on the
// store's next open; the rename itself stands.
func (s *CNGStore) Rename(from, to string) error {
	if err := checkName(from); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	if s.dir == "" {
		return fmt.Errorf("keystore: renaming a CNG key needs the key store directory for %s: %w", CNGNamesFile, ErrUnsupported)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	unlock, err := s.lockNames(cngLockWait)
	if err != nil {
		return err
	}
	defer unlock()
	names, err := s.loadNames()
	if err != nil {
		return err
	}
	h, err := s.openKey(names.cngName(from))
	if err != nil {
		return err
	}
	freeObject(h)
	renamed, old := names.renamed(from, to)
	if err := s.saveNames(renamed); err != nil {
		return err
	}
	if err := s.deleteCNG(old); err == nil || errors.Is(err, ErrNotFound) {
		_ = s.saveNames(renamed.withoutRetired(old))
	}
	return nil
}

// Info implements Store. HardwareBacked is what the key itself says, once
// one has been opened or created; before that it is false.
func (s *CNGStore) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := InfoCNGSoftware
	if s.platform {
		b = InfoCNGPlatform
	}
	detail := s.provName
	if s.keyKnown && s.platform && !s.hardware {
		detail += " (the key does not report a hardware implementation)"
	}
	if s.why != "" && !s.platform {
		detail += "; " + s.why
	}
	return Info{Backend: b, HardwareBacked: s.keyKnown && s.hardware, Detail: detail}
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
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	if k.s.closed {
		return nil, errClosed
	}
	var out []byte
	err := retryTransient(cngRetryDelays, time.Sleep, func() error {
		var err error
		out, err = k.ecdhLocked(peer)
		return err
	})
	return out, err
}

// ecdhLocked is ECDH; the caller holds k.s.mu.
func (k *cngKey) ecdhLocked(peer *ecdh.PublicKey) ([]byte, error) {
	blob, err := eccPublicBlob(peer)
	if err != nil {
		return nil, err
	}
	var hPeer ncryptHandle
	if err := call(procImportKey, "NCryptImportKey",
		uintptr(k.s.prov), 0, uintptr(unsafe.Pointer(utf16(bcryptECCPublicBlob))), 0,
		uintptr(unsafe.Pointer(&hPeer)), uintptr(unsafe.Pointer(&blob[0])), uintptr(len(blob)),
		ncryptSilentFlag); err != nil {
		return nil, fmt.Errorf("keystore: %w", cngErr(err))
	}
	defer freeObject(hPeer)
	var hSecret ncryptHandle
	if err := call(procSecretAgreement, "NCryptSecretAgreement",
		uintptr(k.h), uintptr(hPeer), uintptr(unsafe.Pointer(&hSecret)), ncryptSilentFlag); err != nil {
		return nil, fmt.Errorf("keystore: %w", cngErr(err))
	}
	defer freeObject(hSecret)
	le := make([]byte, p256Bytes)
	defer clear(le)
	var n uint32
	if err := call(procDeriveKey, "NCryptDeriveKey",
		uintptr(hSecret), uintptr(unsafe.Pointer(utf16(bcryptKDFRawSecret))), 0,
		uintptr(unsafe.Pointer(&le[0])), uintptr(len(le)), uintptr(unsafe.Pointer(&n)), 0); err != nil {
		return nil, fmt.Errorf("keystore: %w", cngErr(err))
	}
	return rawSecretToX(le[:n])
}
