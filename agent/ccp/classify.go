package ccp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

// disposition is what the retry loop does after a failed attempt.
type disposition int

const (
	fatal      disposition = iota // give up now
	retry                         // transient: next server now, this one again next round
	nextServer                    // this server is wrong for us: try the others, not this one again
)

// dispositionOf decides from an attempt's error.
func dispositionOf(e *Error) disposition {
	switch e.Class {
	case apitype.ClassServerError:
		return retry
	case apitype.ClassTimeout:
		if errors.Is(e.Err, context.Canceled) {
			return fatal
		}
		return retry
	case apitype.ClassVaultUnreachable:
		if isTrustFailure(e.Err) {
			return nextServer
		}
		return retry
	case apitype.ClassStoreMisconfigured:
		var dns *net.DNSError
		if errors.As(e.Err, &dns) {
			return nextServer // one misspelled server among several
		}
	}
	return fatal
}

func isTrustFailure(err error) bool {
	var (
		ve  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		pin pinError
	)
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) ||
		errors.As(err, &ci) || errors.As(err, &pin)
}

// isConnReset reports whether err is the connection being reset or closed
// under the client.
func isConnReset(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
}

// TrustReason says in words why the server's certificate was not trusted,
// with what to check: the x509 reason (expired, not yet valid, wrong name,
// unknown authority), not only "untrusted".
func TrustReason(err error) string {
	var (
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &he):
		return "it is not valid for the name " + strconv.Quote(he.Host) + " (" + he.Error() + "): check the server URL, or the certificate's names"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		if ci.Cert != nil && time.Now().Before(ci.Cert.NotBefore) {
			return "it is not valid yet (from " + ci.Cert.NotBefore.UTC().Format(time.RFC3339) + "): check this machine's clock"
		}
		if ci.Cert != nil {
			return "it expired on " + ci.Cert.NotAfter.UTC().Format(time.RFC3339) + ": renew the server's certificate, or check this machine's clock"
		}
		return "it is expired or not yet valid: check the certificate's dates and this machine's clock"
	case errors.As(err, &ci):
		return "it is not valid (" + ci.Error() + ")"
	case errors.As(err, &ua):
		return "it was issued by an authority this store does not trust: check the store's CA bundle"
	}
	return "check the CA bundle and the server name"
}

// certAlerts are the TLS alerts by which a server refuses our client
// certificate, by their text in crypto/tls (its alert type is unexported).
var certAlerts = []string{
	"bad certificate", "unsupported certificate", "revoked certificate",
	"expired certificate", "unknown certificate", "unknown certificate authority",
	"access denied", "certificate required", "handshake failure",
}

// classifyTransport classifies an error from RoundTrip or from reading the
// body. It drops *url.Error, whose text holds the full URL with the query.
func classifyTransport(err error) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	e := &Error{Err: err}
	var (
		ce  *certError
		pxe *proxyError
		op  *net.OpError
		dns *net.DNSError
		ne  net.Error
	)
	switch {
	case errors.As(err, &ce):
		e.Class = apitype.ClassAppCertUnreadable
		e.Message = "the application certificate cannot be read"
	case errors.As(err, &pxe):
		e.Class = apitype.ClassVaultUnreachable
		e.Code = "PROXY"
		e.Message = pxe.Error()
		e.Err = nil
	case errors.Is(err, context.Canceled):
		e.Class = apitype.ClassTimeout
		e.Message = "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		e.Class = apitype.ClassTimeout
		e.Message = "no answer in time"
	case errors.As(err, &pinError{}):
		e.Class = apitype.ClassVaultUnreachable
		e.Message = "the server is not trusted: its public key matches no configured pin"
	case isTrustFailure(err):
		e.Class = apitype.ClassVaultUnreachable
		e.Message = "the server's certificate is not trusted: " + TrustReason(err)
	case errors.As(err, &op) && op.Op == "remote error":
		text := strings.TrimPrefix(op.Err.Error(), "tls: ")
		e.Class = apitype.ClassVaultUnreachable
		e.Message = "the server ended the TLS connection: " + text
		for _, a := range certAlerts {
			if text == a {
				e.Class = apitype.ClassClientCertRejected
				e.Message = "the server refused the client certificate (TLS alert: " + text + ")"
			}
		}
	case errors.As(err, &op) && op.Op == "proxyconnect":
		e.Class = apitype.ClassVaultUnreachable
		e.Message = "cannot reach the proxy"
		if errors.As(err, &ne) && ne.Timeout() {
			e.Message = "cannot reach the proxy: connect timeout"
		}
	case errors.As(err, &dns):
		e.Class = apitype.ClassVaultUnreachable
		e.Message = "cannot resolve the server's host name"
		if dns.IsNotFound {
			e.Class = apitype.ClassStoreMisconfigured
			e.Message = "the server's host name does not exist: check the server URL"
		}
	case errors.As(err, &op) && op.Op == "dial":
		e.Class = apitype.ClassVaultUnreachable
		e.Message = "cannot connect to the server"
		if op.Timeout() {
			e.Message = "cannot connect to the server: connect timeout"
		}
	case errors.As(err, &ne) && ne.Timeout():
		e.Class = apitype.ClassTimeout
		e.Message = "no answer in time"
		if strings.Contains(err.Error(), "TLS handshake timeout") {
			e.Message = "the TLS handshake did not finish in time"
		}
	case isConnReset(err):
		e.Class = apitype.ClassVaultUnreachable
		e.Message = "the server closed the connection"
	default:
		e.Class = apitype.ClassVaultUnreachable
		e.Message = "the connection to the server failed"
	}
	return e
}
