package keystore

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestClassifyCNG(t *testing.T) {
	tests := []struct {
		name string
		code uint32
		want cngClass
	}{
		{"NTE_BAD_KEYSET: NCryptOpenKey's documented missing key", 0x80090016, cngNoKey},
		{"NTE_NO_KEY", 0x8009000D, cngNoKey},
		{"NTE_NOT_FOUND", 0x80090011, cngNoKey},
		{"NTE_EXISTS", 0x8009000F, cngKeyExists},
		// Wine's NCryptOpenKey stub and a provider without ECDH P-256: the
		// provider does not work, which is neither "no key" nor a key.
		{"NTE_NOT_SUPPORTED", 0x80090029, cngUnsupported},
		{"NTE_BAD_ALGID", 0x80090008, cngUnsupported},
		{"NTE_BAD_FLAGS", 0x80090009, cngUnsupported},
		{"NTE_PROV_DLL_NOT_FOUND", 0x8009001E, cngUnsupported},
		{"NTE_PROVIDER_DLL_FAIL", 0x8009001D, cngUnsupported},
		{"NTE_DEVICE_NOT_FOUND", 0x80090035, cngUnsupported},
		{"TBS_E_TPM_NOT_FOUND", 0x8028400F, cngUnsupported},
		{"TBS_E_SERVICE_DISABLED", 0x80284010, cngUnsupported},
		{"TPM_E_PCP_NOT_SUPPORTED", 0x80290405, cngUnsupported},
		{"TPM_E_PCP_DEVICE_NOT_READY (not provisioned)", 0x80290401, cngUnsupported},
		// Transient: retried, never a move to software nor re-enrolment.
		{"TBS_E_SERVICE_NOT_RUNNING", 0x80284008, cngTransient},
		{"TBS_E_SERVICE_START_PENDING", 0x8028400B, cngTransient},
		{"TPM_E_RETRY", 0x80280800, cngTransient},
		{"TPM_E_DEFEND_LOCK_RUNNING", 0x80280803, cngTransient},
		{"TPM_20_E_LOCKOUT", 0x80280921, cngTransient},
		{"TPM_20_E_RETRY", 0x80280922, cngTransient},
		{"TPM_20_E_YIELDED", 0x80280908, cngTransient},
		{"TPM_20_E_NV_RATE", 0x80280920, cngTransient},
		{"TPM_E_LOCKED_OUT (PCP)", 0x8029041B, cngTransient},
		{"NTE_DEVICE_NOT_READY (also: no usable TPM)", 0x80090030, cngUnsupported},
		{"an unlisted TPM error", 0x80280099, cngTransient},
		{"an unlisted PCP error", 0x80290499, cngTransient},
		// The key no longer loads: re-enrolment.
		{"TPM_E_PCP_KEY_HANDLE_INVALIDATED", 0x80290422, cngKeyUnusable},
		{"TPM_E_PCP_WRONG_PARENT", 0x8029040E, cngKeyUnusable},
		{"TPM_E_KEY_NOT_LOADED", 0x8029040F, cngKeyUnusable},
		{"TPM_20_E_INTEGRITY", 0x8028009F, cngKeyUnusable},
		// Everything else is reported as it is.
		{"NTE_BAD_KEY", 0x80090003, cngFailed},
		{"NTE_PERM", 0x80090010, cngFailed},
		{"E_ACCESSDENIED", 0x80070005, cngFailed},
	}
	for _, tt := range tests {
		if got := classifyCNG(tt.code); got != tt.want {
			t.Errorf("%s (%#08x): %v, want %v", tt.name, tt.code, got, tt.want)
		}
	}
}

// Opening the provider: only the listed transient codes wait; an unlisted
// TPM error there more likely means no usable TPM.
func TestOpenTransient(t *testing.T) {
	for _, c := range []struct {
		code uint32
		want bool
	}{
		{0x80284008, true},  // TBS_E_SERVICE_NOT_RUNNING
		{0x8028400B, true},  // TBS_E_SERVICE_START_PENDING
		{0x80280921, true},  // TPM_20_E_LOCKOUT
		{0x80280099, false}, // unlisted TPM error
		{0x80090030, false}, // NTE_DEVICE_NOT_READY
		{0x8028400F, false}, // TBS_E_TPM_NOT_FOUND
		{0x80090029, false}, // NTE_NOT_SUPPORTED
	} {
		if got := openTransient(c.code); got != c.want {
			t.Errorf("openTransient(%#08x) = %v, want %v", c.code, got, c.want)
		}
	}
}

func TestClassError(t *testing.T) {
	base := errors.New("NCryptOpenKey: 0x80090016")
	for _, c := range []struct {
		class cngClass
		want  error
	}{
		{cngNoKey, ErrNotFound},
		{cngKeyExists, ErrExists},
		{cngUnsupported, ErrProviderUnusable},
		{cngTransient, ErrTransient},
		{cngKeyUnusable, ErrNeedsReenroll},
	} {
		err := classError(c.class, base)
		if !errors.Is(err, c.want) {
			t.Errorf("%v: %v does not wrap %v", c.class, err, c.want)
		}
		for _, other := range []error{ErrNotFound, ErrExists, ErrProviderUnusable, ErrTransient, ErrNeedsReenroll} {
			if other != c.want && errors.Is(err, other) {
				t.Errorf("%v: %v also wraps %v", c.class, err, other)
			}
		}
	}
	if got := classError(cngFailed, base); got != base {
		t.Errorf("cngFailed: %v, want the error as it is", got)
	}
}

func TestRetryTransient(t *testing.T) {
	transient := fmt.Errorf("%w: TPM_E_RETRY", ErrTransient)
	other := errors.New("NTE_PERM")
	delays := []time.Duration{1, 2, 3}
	tests := []struct {
		name      string
		results   []error
		wantCalls int
		wantErr   error
		wantSlept []time.Duration
	}{
		{"success at once", []error{nil}, 1, nil, nil},
		{"transient then success", []error{transient, transient, nil}, 3, nil, []time.Duration{1, 2}},
		{"other error: no retry", []error{other}, 1, other, nil},
		{"transient then other", []error{transient, other}, 2, other, []time.Duration{1}},
		{"transient for ever: gives up after the delays", []error{transient, transient, transient, transient, transient}, 4, ErrTransient, []time.Duration{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var slept []time.Duration
			err := retryTransient(delays, func(d time.Duration) { slept = append(slept, d) }, func() error {
				calls++
				return tt.results[calls-1]
			})
			if calls != tt.wantCalls {
				t.Errorf("%d calls, want %d", calls, tt.wantCalls)
			}
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if fmt.Sprint(slept) != fmt.Sprint(tt.wantSlept) {
				t.Errorf("slept %v, want %v", slept, tt.wantSlept)
			}
		})
	}
	var total time.Duration
	for _, d := range cngRetryDelays {
		total += d
	}
	if total < 10*time.Second || total > time.Minute {
		t.Errorf("cngRetryDelays add up to %v; want between 10 s and a minute (the service's start budget is 90 s)", total)
	}
}

func TestCNGCreateFallback(t *testing.T) {
	unusable := classError(cngUnsupported, errors.New("NTE_NOT_SUPPORTED"))
	wrong := fmt.Errorf("%w: ECDH with the new key gives a wrong answer", ErrProviderUnusable)
	transient := classError(cngTransient, errors.New("TPM_20_E_LOCKOUT"))
	tests := []struct {
		name          string
		err           error
		sticky, first bool
		want          bool
	}{
		{"the TPM's provider cannot make the key", unusable, false, true, true},
		{"the TPM's key gives a wrong ECDH answer", wrong, false, true, true},
		{"lockout: retry, never move to software", transient, false, true, false},
		{"access denied: an error to see", errors.New("NTE_PERM"), false, true, false},
		{"provider recorded: never move", unusable, true, true, false},
		{"not the first key", unusable, false, false, false},
		{"no error", nil, false, true, false},
	}
	for _, tt := range tests {
		if got := cngCreateFallback(tt.err, tt.sticky, tt.first); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
