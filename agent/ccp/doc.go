// Package ccp is the client for CyberArk's Central Credential Provider: it
// fetches one account with an application's TLS client certificate.
package ccp
