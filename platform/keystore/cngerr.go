package keystore

import (
	"errors"
	"fmt"
	"time"
)

// What a failed SECURITY_STATUS from the CNG backend means to it. The table
// is OS-neutral so that it is tested everywhere; cng_windows.go acts on it.
//
// The values are winerror.h's (as golang.org/x/sys/windows generates them).
// NCryptOpenKey documents NTE_BAD_KEYSET for "the specified key was not
// found"; the TPM (0x8028xxxx: TPM 2.0 responses and TBS, the TPM Base
// Services) and Platform Crypto Provider (0x802904xx) ranges are split by
// what they say about the key rather than treated as one.
const (
	nteBadAlgID          = 0x80090008 // NTE_BAD_ALGID
	nteBadFlags          = 0x80090009 // NTE_BAD_FLAGS
	nteNoKey             = 0x8009000D // NTE_NO_KEY: "Key does not exist"
	nteBadProvider       = 0x80090013 // NTE_BAD_PROVIDER
	nteBadProvType       = 0x80090014 // NTE_BAD_PROV_TYPE
	nteProviderDLLFail   = 0x8009001D // NTE_PROVIDER_DLL_FAIL
	nteProvDLLNotFound   = 0x8009001E // NTE_PROV_DLL_NOT_FOUND
	nteDeviceNotReady    = 0x80090030 // NTE_DEVICE_NOT_READY: also what a machine without a usable TPM answers
	nteDeviceNotFound    = 0x80090035 // NTE_DEVICE_NOT_FOUND
	tpmInvalidKeyHandle  = 0x8028000C // TPM_E_INVALID_KEYHANDLE
	tpm20Handle          = 0x8028008B // TPM_20_E_HANDLE
	tpm20Integrity       = 0x8028009F // TPM_20_E_INTEGRITY: a blob the TPM's keys no longer open
	tpmRetry             = 0x80280800 // TPM_E_RETRY
	tpmNeedsSelftest     = 0x80280801 // TPM_E_NEEDS_SELFTEST
	tpmDoingSelftest     = 0x80280802 // TPM_E_DOING_SELFTEST
	tpmDefendLockRunning = 0x80280803 // TPM_E_DEFEND_LOCK_RUNNING: dictionary-attack defence
	tpm20ObjectMemory    = 0x80280902 // TPM_20_E_OBJECT_MEMORY
	tpm20SessionMemory   = 0x80280903 // TPM_20_E_SESSION_MEMORY
	tpm20Memory          = 0x80280904 // TPM_20_E_MEMORY
	tpm20Yielded         = 0x80280908 // TPM_20_E_YIELDED
	tpm20Canceled        = 0x80280909 // TPM_20_E_CANCELED
	tpm20Testing         = 0x8028090A // TPM_20_E_TESTING
	tpm20NVRate          = 0x80280920 // TPM_20_E_NV_RATE
	tpm20Lockout         = 0x80280921 // TPM_20_E_LOCKOUT
	tpm20Retry           = 0x80280922 // TPM_20_E_RETRY
	tpm20NVUnavailable   = 0x80280923 // TPM_20_E_NV_UNAVAILABLE
	tbsServiceNotRunning = 0x80284008 // TBS_E_SERVICE_NOT_RUNNING
	tbsTooManyContexts   = 0x80284009 // TBS_E_TOO_MANY_TBS_CONTEXTS
	tbsTooManyResources  = 0x8028400A // TBS_E_TOO_MANY_RESOURCES
	tbsStartPending      = 0x8028400B // TBS_E_SERVICE_START_PENDING
	tbsCommandCanceled   = 0x8028400D // TBS_E_COMMAND_CANCELED
	tbsTPMNotFound       = 0x8028400F // TBS_E_TPM_NOT_FOUND
	tbsServiceDisabled   = 0x80284010 // TBS_E_SERVICE_DISABLED
	tbsProvIncomplete    = 0x80284016 // TBS_E_PROVISIONING_INCOMPLETE
	pcpDeviceNotReady    = 0x80290401 // TPM_E_PCP_DEVICE_NOT_READY: TPM not provisioned
	pcpFlagNotSupported  = 0x80290404 // TPM_E_PCP_FLAG_NOT_SUPPORTED
	pcpNotSupported      = 0x80290405 // TPM_E_PCP_NOT_SUPPORTED
	pcpWrongParent       = 0x8029040E // TPM_E_PCP_WRONG_PARENT: the storage key changed
	pcpKeyNotLoaded      = 0x8029040F // TPM_E_KEY_NOT_LOADED
	pcpSoftKeyError      = 0x80290417 // TPM_E_SOFT_KEY_ERROR
	pcpLockedOut         = 0x8029041B // TPM_E_LOCKED_OUT
	pcpRawPolicyNotSupp  = 0x80290421 // TPM_E_PCP_RAW_POLICY_NOT_SUPPORTED
	pcpKeyHandleInval    = 0x80290422 // TPM_E_PCP_KEY_HANDLE_INVALIDATED
)

// cngClass is what a failed call means for the backend.
type cngClass int

const (
	// cngFailed: anything not below; reported as it is.
	cngFailed cngClass = iota
	// cngNoKey: the key does not exist (ErrNotFound).
	cngNoKey
	// cngKeyExists: a key of that name exists (ErrExists).
	cngKeyExists
	// cngUnsupported: this provider cannot do this at all (no TPM, no
	// ECDH P-256, a provider that is a stub). Only this moves the first
	// key to the software provider.
	cngUnsupported
	// cngTransient: the TPM is busy, locked out for a while, self-testing,
	// or its service is not running yet. Retried with back-off; never a
	// reason to give up the TPM or the key.
	cngTransient
	// cngKeyUnusable: the key exists but no longer loads (the TPM was
	// cleared, its storage key changed): ErrNeedsReenroll.
	cngKeyUnusable
)

func (c cngClass) String() string {
	return [...]string{"failed", "no key", "exists", "unsupported by the provider", "transient", "key unusable"}[c]
}

// classifyCNG sorts a SECURITY_STATUS. NTE_NOT_FOUND counts as "no key"
// only where the backend asks for a key by name (opening it).
func classifyCNG(code uint32) cngClass {
	switch code {
	case nteBadKeyset, nteNoKey, nteNotFound:
		return cngNoKey
	case nteExists:
		return cngKeyExists
	case nteNotSupported, nteBadAlgID, nteBadFlags, nteBadProvider, nteBadProvType,
		nteProviderDLLFail, nteProvDLLNotFound, nteDeviceNotFound, nteDeviceNotReady,
		tbsTPMNotFound, tbsServiceDisabled, tbsProvIncomplete,
		pcpDeviceNotReady, pcpFlagNotSupported, pcpNotSupported, pcpRawPolicyNotSupp:
		return cngUnsupported
	case pcpKeyHandleInval, pcpWrongParent, pcpKeyNotLoaded, pcpSoftKeyError,
		tpmInvalidKeyHandle, tpm20Handle, tpm20Integrity:
		return cngKeyUnusable
	}
	// The listed transient codes, and any other TPM or Platform Crypto
	// Provider error, which is not known to mean the key is gone: retry it,
	// and let the error show if it persists.
	if listedTransient(code) || code&0xFFFF0000 == 0x80280000 || code&0xFFFF0000 == 0x80290000 {
		return cngTransient
	}
	return cngFailed
}

// listedTransient: the TPM busy, self-testing, out of memory for the
// moment, locked out by its dictionary-attack defence, or TBS not running
// yet.
func listedTransient(code uint32) bool {
	switch code {
	case tpmRetry, tpmNeedsSelftest, tpmDoingSelftest, tpmDefendLockRunning,
		tpm20ObjectMemory, tpm20SessionMemory, tpm20Memory, tpm20Yielded, tpm20Canceled,
		tpm20Testing, tpm20NVRate, tpm20Lockout, tpm20Retry, tpm20NVUnavailable,
		tbsServiceNotRunning, tbsTooManyContexts, tbsTooManyResources, tbsStartPending,
		tbsCommandCanceled, pcpLockedOut:
		return true
	}
	return false
}

// openTransient reports whether a failure to open the provider itself is
// worth waiting for (TBS starting, a TPM busy or locked out) rather than a
// sign that this machine has no usable TPM: only the listed transient
// codes, not the catch-all for unlisted TPM errors, which on a machine
// without a working TPM would otherwise keep the first key from ever being
// made.
func openTransient(code uint32) bool { return listedTransient(code) }

// ErrTransient marks a key store failure that may pass by itself (the TPM
// busy or locked out for a while, its service starting): the agent retries
// rather than asking for re-enrolment.
var ErrTransient = errors.New("keystore: the key store is temporarily unavailable")

// ErrProviderUnusable means the CNG provider opened but cannot do what the
// agent needs (it is missing, a stub, or lacks ECDH P-256).
var ErrProviderUnusable = errors.New("keystore: the key storage provider cannot be used")

// classError wraps err with the sentinel of its class, so callers can ask
// errors.Is. cngFailed errors are returned as they are.
func classError(c cngClass, err error) error {
	switch c {
	case cngNoKey:
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	case cngKeyExists:
		return fmt.Errorf("%w (%v)", ErrExists, err)
	case cngUnsupported:
		return fmt.Errorf("%w: %w", ErrProviderUnusable, err)
	case cngTransient:
		return fmt.Errorf("%w: %w", ErrTransient, err)
	case cngKeyUnusable:
		return fmt.Errorf("%w: %w", ErrNeedsReenroll, err)
	}
	return err
}

// cngRetryDelays are the pauses between attempts of a call that failed
// with a transient error: about half a minute in all, long enough for a busy
// TPM or TBS starting with the system, short enough that the service's own
// start budget and the SCM's recovery (restart after 5 s, 30 s, 2 min) take
// over for a longer outage such as a dictionary-attack lockout.
var cngRetryDelays = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second}

// retryTransient runs f until it succeeds, fails with an error that is not
// ErrTransient, or the delays run out; sleep waits (tests pass a fake).
func retryTransient(delays []time.Duration, sleep func(time.Duration), f func() error) error {
	err := f()
	for _, d := range delays {
		if !errors.Is(err, ErrTransient) {
			return err
		}
		sleep(d)
		err = f()
	}
	return err
}
