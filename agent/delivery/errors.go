package delivery

import "errors"

// Every error returned by this package wraps exactly one of these sentinels,
// so that callers can classify a refusal with errors.Is and Reason.
var (
	// ErrTooLarge: the file, its header or its payload exceeds a size limit.
	ErrTooLarge = errors.New("delivery: too large")
	// ErrUnsupported: the file names a format version this agent cannot read.
	ErrUnsupported = errors.New("delivery: unsupported format version")
	// ErrMalformed: the bytes are not a well-formed delivery, or the
	// content does not decode.
	ErrMalformed = errors.New("delivery: malformed")
	// ErrUnknownSigner: the signer key ID is not one of the pinned portal
	// signing keys.
	ErrUnknownSigner = errors.New("delivery: signer is not a pinned portal key")
	// ErrBadSignature: the signature does not verify under the named key.
	ErrBadSignature = errors.New("delivery: bad signature")
	// ErrNotVerified: Open was called before a successful Verify.
	ErrNotVerified = errors.New("delivery: signature not verified")
	// ErrExpired: the delivery's expires time has passed.
	ErrExpired = errors.New("delivery: expired")
	// ErrWrongRecipient: the delivery is addressed to another machine or a
	// group this machine is not in, or sealed to a key it does not hold.
	ErrWrongRecipient = errors.New("delivery: not addressed to this machine")
	// ErrReplay: the sequence number is not greater than the one already
	// applied for the same object.
	ErrReplay = errors.New("delivery: sequence is not newer (replay)")
	// ErrDecrypt: the sealed payload does not open with the recipient key.
	ErrDecrypt = errors.New("delivery: sealed payload does not open")
	// ErrKeyUnavailable: the key store failed to do the key agreement (a TPM
	// that does not answer). It says nothing about the delivery, which
	// should be tried again later rather than refused.
	ErrKeyUnavailable = errors.New("delivery: the key store could not open the seal")
	// ErrInvalid: the content decodes but a value is not acceptable (a URL
	// that is not https, a pin that is not a SHA-256, a missing field).
	ErrInvalid = errors.New("delivery: invalid content")
	// ErrKeyMismatch: an application's private key does not belong to its
	// certificate.
	ErrKeyMismatch = errors.New("delivery: private key does not match the certificate")
	// ErrCertExpired: a certificate of the chain is expired or not yet valid.
	ErrCertExpired = errors.New("delivery: certificate expired or not yet valid")
	// ErrBadChain: the chain does not link (a certificate is not signed by
	// the next one) or the leaf may not be used for client authentication.
	ErrBadChain = errors.New("delivery: certificate chain does not verify")
	// ErrRollback: a feed manifest's sequence is lower than the newest one
	// accepted for its address, or equal to it with other bytes.
	ErrRollback = errors.New("delivery: feed manifest rolled back")
	// ErrHashMismatch: a delivery fetched from a feed is not the one its
	// manifest lists (size, SHA-256 or header).
	ErrHashMismatch = errors.New("delivery: feed delivery does not match its manifest")
	// ErrNotSealed: a feed served a store or credential in clear.
	ErrNotSealed = errors.New("delivery: feed delivery is not sealed")
)

var reasons = []struct {
	err  error
	code string
}{
	{ErrTooLarge, "too-large"},
	{ErrUnsupported, "unsupported-version"},
	{ErrMalformed, "malformed"},
	{ErrUnknownSigner, "unknown-signer"},
	{ErrBadSignature, "bad-signature"},
	{ErrNotVerified, "not-verified"},
	{ErrExpired, "expired"},
	{ErrWrongRecipient, "wrong-recipient"},
	{ErrReplay, "replay"},
	{ErrDecrypt, "decrypt"},
	{ErrKeyUnavailable, "key-unavailable"},
	{ErrInvalid, "invalid"},
	{ErrKeyMismatch, "key-mismatch"},
	{ErrCertExpired, "certificate-expired"},
	{ErrBadChain, "bad-chain"},
	{ErrRollback, "rollback"},
	{ErrHashMismatch, "hash-mismatch"},
	{ErrNotSealed, "not-sealed"},
}

// Reason returns the short, stable code of the sentinel err wraps ("replay",
// "bad-signature" ...), as used in test vectors, reason files and status.
// An error wrapping none of them yields "error".
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "error"
}
