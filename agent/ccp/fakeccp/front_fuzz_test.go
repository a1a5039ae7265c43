package fakeccp

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzParseFrontCert: whatever a front's header holds, parseFrontCert
// returns a certificate, nothing, or an error, and never panics; a header
// longer than the bound is refused unread.
func FuzzParseFrontCert(f *testing.F) {
	for _, s := range []string{"", "(null)", "-----BEGIN CERTIFICATE----- MIIB -----END CERTIFICATE-----",
		base64.StdEncoding.EncodeToString([]byte{0x30, 0x03, 0x02, 0x01, 0x00}), "%%%", strings.Repeat("A", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseFrontCert(v)
		if c != nil && err != nil {
			t.Fatal("certificate and error")
		}
		if len(strings.TrimSpace(v)) > maxFrontCertBytes && err == nil {
			t.Fatal("oversized header accepted")
		}
	})
}
