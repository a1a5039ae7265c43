package fakeccp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The error codes the fake answers with, all from CCP's documentation
// (ccp-api.md section 3).
const (
	CodeInvalidQuery     = "AIMWS030E" // 400 invalid query format (also invalid regexps)
	CodeAppIDRequired    = "AIMWS031E" // 400 no AppID
	CodeTooManyObjects   = "APPAP227E" // 400 more than one account matches
	CodeVaultUnreachable = "APPAP007E" // 400 connection to the Vault failed (fault VaultDown)
	CodeInvalidContent   = "APPAP081E" // 400 request content invalid (forbidden characters, no criteria)
	CodeInvalidUserName  = "CASVL010E" // 400 invalid characters in UserName
	CodeAuthFailed       = "APPAP306E" // 403 application authentication failed
	CodeAppNotDefined    = "APPAP008E" // 403 unknown AppID
	CodeNoClientCert     = "APPAP330E" // 403 by default: the app needs a certificate, none arrived
	CodeNotFound         = "APPAP004E" // 404 no match, or the app may not read the safe
	CodePasswordChanging = "APPAP282E" // 500 CPM change in progress and FailRequestOnPasswordChange
	codeOK               = "OK"
	codeIISNotFound      = "IIS 404.0"
	codeIISCertRequired  = "IIS 403.7"
	codeIISCertUntrusted = "IIS 403.16"
	codeIISCertExpired   = "IIS 403.17"
	codeURLTooLong       = "HTTP 414"
	codeMethodNotAllowed = "HTTP 405"
	codeFaultStatus      = "fault"
)

// ccpError is an answer in CCP's JSON error envelope.
type ccpError struct {
	status int
	code   string
	msg    string
}

func errInvalidQuery(detail string) *ccpError {
	return &ccpError{http.StatusBadRequest, CodeInvalidQuery, "Invalid query format. " + detail + " (Diagnostic Info: 9)"}
}

func errInvalidContent(detail string) *ccpError {
	return &ccpError{http.StatusBadRequest, CodeInvalidContent, "Request content invalid. " + detail}
}

var errAppIDRequired = &ccpError{http.StatusBadRequest, CodeAppIDRequired, "Invalid request. The AppID parameter is required."}

var errVaultDown = &ccpError{http.StatusBadRequest, CodeVaultUnreachable,
	"Failed to connect to the Vault (Diagnostic Info: 2). Please check the Vault address and the network connection to it."}

func errAppNotDefined(appID string) *ccpError {
	return &ccpError{http.StatusForbidden, CodeAppNotDefined,
		fmt.Sprintf("Problem occurred while trying to use user in the Vault (Error: ITATS982E User %s is not defined.  Diagnostic Info: 6)", appID)}
}

func errAuth(appID, reason string) *ccpError {
	return &ccpError{http.StatusForbidden, CodeAuthFailed,
		fmt.Sprintf("Authentication error for App ID [%s]. Reason: APPAP133E Failed to verify application authentication data: %s", appID, reason)}
}

func errNoCert(status int) *ccpError {
	return &ccpError{status, CodeNoClientCert, "Failed to verify application authentication data: Could not obtain client certificate details"}
}

func errNotFound(query string) *ccpError {
	return &ccpError{http.StatusNotFound, CodeNotFound,
		"Password object matching query [" + query + "] was not found (Diagnostic Info: 5). Please check that there is a password object that answers your query in the Vault and that both the Provider and the application user have the appropriate permissions needed in order to use the password."}
}

func errTooMany(query, a, b string) *ccpError {
	return &ccpError{http.StatusBadRequest, CodeTooManyObjects,
		"Too many password objects matching query [" + query + "] were found: (" + a + " and " + b + ") (Diagnostic Info: 41)"}
}

func errChanging(object string) *ccpError {
	return &ccpError{http.StatusInternalServerError, CodePasswordChanging,
		"Password [" + object + "] is currently being changed by the CPM."}
}

// body is the JSON envelope.
func (e *ccpError) body() []byte {
	b, _ := json.Marshal(struct {
		ErrorCode string
		ErrorMsg  string
	}{e.code, e.msg})
	return b
}

// iisPage is an HTML page in the shape of IIS 10's detailed errors.
type iisPage struct {
	status int
	code   string // for counters and audit
	title  string // "403.7 - Forbidden"
	text   string
}

var (
	pageNotFound = iisPage{http.StatusNotFound, codeIISNotFound, "404.0 - Not Found",
		"The resource you are looking for has been removed, had its name changed, or is temporarily unavailable."}
	pageCertRequired = iisPage{http.StatusForbidden, codeIISCertRequired, "403.7 - Forbidden",
		"The page you are attempting to access requires your browser to have a Secure Sockets Layer (SSL) client certificate that the Web server recognizes."}
	pageCertUntrusted = iisPage{http.StatusForbidden, codeIISCertUntrusted, "403.16 - Forbidden",
		"Your client certificate is either not trusted or is invalid."}
	pageCertExpired = iisPage{http.StatusForbidden, codeIISCertExpired, "403.17 - Forbidden",
		"Your client certificate has expired or is not yet valid."}
	pageURLTooLong = iisPage{http.StatusRequestURITooLong, codeURLTooLong, "414 - Request-URI Too Long",
		"The request URL is too long."}
	pageMethodNotAllowed = iisPage{http.StatusMethodNotAllowed, codeMethodNotAllowed, "405.0 - Method Not Allowed",
		"The page you are looking for cannot be displayed because an invalid method (HTTP verb) is being used."}
)

func statusPage(status int) iisPage {
	return iisPage{status, codeFaultStatus, fmt.Sprintf("%d.0 - %s", status, http.StatusText(status)), http.StatusText(status) + "."}
}

func (p iisPage) html() []byte {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>IIS 10.0 Detailed Error - `)
	b.WriteString(p.title)
	b.WriteString(`</title>
</head>
<body>
<div id="content">
<div class="content-container">
<h3>HTTP Error `)
	b.WriteString(p.title)
	b.WriteString(`</h3>
<h4>`)
	b.WriteString(p.text)
	b.WriteString(`</h4>
</div>
</div>
</body>
</html>
`)
	return []byte(b.String())
}
