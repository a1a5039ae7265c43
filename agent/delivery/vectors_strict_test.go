package delivery

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// strictVectors pin down what SPEC §2 and §3.1 leave to the reader: exact
// key matching, null, what an integer is, whitespace around the JSON, line
// ends, the header limit, and the codes of the cases in between.
func strictVectors() []vector {
	toMe := Machine(testMachine)
	// sealed builds a sealed delivery of kind k around raw content.
	sealed := func(t *testing.T, id, target string, c Content, plain string) []byte {
		d := mk(t, hdr(id, target, 1, toMe), c, machineKey.PublicKey(), edSigner)
		d.Payload = sealRaw(t, &d.Header, machineKey.PublicKey(), []byte(plain))
		return resign(t, d, edSigner).Marshal()
	}
	appJSON := func(t *testing.T) string {
		b, err := goodApp(t).app.marshal()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	gkJSON := func(t *testing.T) string {
		b, _ := (&GroupKey{PrivateKey: secretOf(groupKey.Bytes())}).marshal()
		return string(b)
	}
	clear := func(t *testing.T, id, target string, c Content, plain string) []byte {
		d := mk(t, hdr(id, target, 1, toMe), c, nil, edSigner)
		d.Payload = []byte(plain)
		return resign(t, d, edSigner).Marshal()
	}
	storeJSON := func(t *testing.T) string {
		b, _ := testStore().marshal()
		return string(b)
	}
	credJSON := func(t *testing.T) string {
		b, _ := testCredential().marshal()
		return string(b)
	}
	return []vector{
		{"case-variant-key-application", "malformed", "application content with \"Chain\" for \"chain\": keys match exactly", 0, func(t *testing.T) []byte {
			return sealed(t, "v-strict-1", "app-sap", goodApp(t).app, strings.Replace(appJSON(t), `"chain"`, `"Chain"`, 1))
		}},
		{"case-variant-duplicate-application", "malformed", "application content with \"private_key\" and \"PRIVATE_KEY\"", 0, func(t *testing.T) []byte {
			j := appJSON(t)
			return sealed(t, "v-strict-2", "app-sap", goodApp(t).app, j[:len(j)-1]+`,"PRIVATE_KEY":"AAAA"}`)
		}},
		{"case-variant-key-group-key", "malformed", "group-key content with \"Private_Key\"", 0, func(t *testing.T) []byte {
			return sealed(t, "v-strict-3", testGroup, &GroupKey{PrivateKey: secretOf(groupKey.Bytes())}, strings.Replace(gkJSON(t), `"private_key"`, `"Private_Key"`, 1))
		}},
		{"case-variant-duplicate-group-key", "malformed", "group-key content with \"private_key\" and \"Private_Key\"", 0, func(t *testing.T) []byte {
			j := gkJSON(t)
			return sealed(t, "v-strict-4", testGroup, &GroupKey{PrivateKey: secretOf(groupKey.Bytes())}, j[:len(j)-1]+`,"Private_Key":"AAAA"}`)
		}},
		{"case-variant-key-store", "malformed", "store content with \"App_ID\" for \"app_id\"", 0, func(t *testing.T) []byte {
			return clear(t, "v-strict-5", "prod", testStore(), strings.Replace(storeJSON(t), `"app_id"`, `"App_ID"`, 1))
		}},
		{"case-variant-duplicate-store", "malformed", "store content with \"app_id\":\"app-sap\" and then \"APP_ID\":\"Other\"", 0, func(t *testing.T) []byte {
			j := storeJSON(t)
			return clear(t, "v-strict-6", "prod", testStore(), j[:len(j)-1]+`,"APP_ID":"Other"}`)
		}},
		{"case-variant-key-credential", "malformed", "credential content with \"Object\" for \"object\"", 0, func(t *testing.T) []byte {
			return clear(t, "v-strict-7", "sap-bot", testCredential(), strings.Replace(credJSON(t), `"object"`, `"Object"`, 1))
		}},
		{"case-variant-duplicate-credential", "malformed", "credential content with \"object\" and \"OBJECT\"", 0, func(t *testing.T) []byte {
			j := credJSON(t)
			return clear(t, "v-strict-8", "sap-bot", testCredential(), j[:len(j)-1]+`,"OBJECT":"other"}`)
		}},
		{"json-whitespace", "success", "store content with JSON whitespace (space, tab, CR, LF) around and inside the object", 0, func(t *testing.T) []byte {
			j := strings.Replace(storeJSON(t), `,"app_id":`, ",\r\n\t\"app_id\" : ", 1)
			return clear(t, "v-strict-9", "prod", testStore(), " \n"+j+"\n\t ")
		}},
		{"json-null", "malformed", "store content with \"safe\":null: null is refused, not read as absent", 0, func(t *testing.T) []byte {
			return clear(t, "v-strict-10", "prod", testStore(), strings.Replace(storeJSON(t), `"safe":"RPA"`, `"safe":null`, 1))
		}},
		{"json-integer-with-fraction", "malformed", "cache_ttl_seconds written 300.0: an integer is a JSON number without fraction or exponent", 0, func(t *testing.T) []byte {
			return clear(t, "v-strict-11", "prod", testStore(), strings.Replace(storeJSON(t), `"cache_ttl_seconds":300`, `"cache_ttl_seconds":300.0`, 1))
		}},
		{"ca-bundle-array", "malformed", "ca_bundle as an array of PEM strings: it is one string", 0, func(t *testing.T) []byte {
			return clear(t, "v-strict-12", "prod", testStore(), strings.Replace(storeJSON(t), `"pins"`, `"ca_bundle":["-----BEGIN CERTIFICATE-----"],"pins"`, 1))
		}},
		{"unparsable-certificate", "malformed", "an application whose leaf is not DER (canonical base64 of garbage)", 0, func(t *testing.T) []byte {
			a := goodApp(t).app
			a.Chain[0] = []byte("not a certificate")
			return mk(t, hdr("v-strict-13", "app-sap", 1, toMe), a, machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"unparsable-private-key", "malformed", "an application whose private key is not PKCS#8", 0, func(t *testing.T) []byte {
			a := goodApp(t).app
			a.PrivateKey = secretOf([]byte("not a key"))
			return mk(t, hdr("v-strict-14", "app-sap", 1, toMe), a, machineKey.PublicKey(), edSigner).Marshal()
		}},
		{"expires-at-created", "malformed", "expires equal to created: it must be after", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-strict-15", "prod", 1, toMe), testStore(), nil, edSigner)
			d.Expires = d.Created
			return resign(t, d, edSigner).Marshal()
		}},
		{"revoke-with-payload", "malformed", "a revoke whose payload is not empty, correctly signed", 1, func(t *testing.T) []byte {
			d := mk(t, hdr("v-strict-16", "app-sap", 2, toMe), &Revoke{KindApplication}, nil, edSigner)
			d.Payload = []byte("{}")
			return resign(t, d, edSigner).Marshal()
		}},
		{"crlf-line-ends", "malformed", "a store delivery whose line ends were converted to CRLF", 0, func(t *testing.T) []byte {
			b := mk(t, hdr("v-strict-17", "prod", 1, toMe), testStore(), nil, edSigner).Marshal()
			return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
		}},
		{"version-not-digits", "malformed", "first line credagent-delivery/v1beta: only credagent-delivery/v<digits> is another version", 0, func(t *testing.T) []byte {
			b := mk(t, hdr("v-strict-18", "prod", 1, toMe), testStore(), nil, edSigner).Marshal()
			return bytes.Replace(b, []byte(Version), []byte(Version+"beta"), 1)
		}},
		{"header-too-large", "malformed", "a header over 4096 bytes (a 5000-byte target): malformed; too-large is for the file and the payload", 0, func(t *testing.T) []byte {
			d := mk(t, hdr("v-strict-19", "prod", 1, toMe), testStore(), nil, edSigner)
			d.Target = strings.Repeat("t", 5000)
			return resign(t, d, edSigner).Marshal()
		}},
		{"expires-one-second-after-created", "success", "expires one second after created, checked before it", 0, func(t *testing.T) []byte {
			h := hdr("v-strict-20", "prod", 1, toMe)
			h.Created = vectorNow.Add(-time.Second)
			h.Expires = vectorNow.Add(time.Second)
			return mk(t, h, testStore(), nil, edSigner).Marshal()
		}},
	}
}

// TestStoreNoProxy: no_proxy takes what the CCP client matches (SPEC
// §3.1): host names, suffixes, IP addresses, CIDR blocks and "*".
func TestStoreNoProxy(t *testing.T) {
	for _, tt := range []struct {
		entry string
		ok    bool
	}{
		{"ccp.example.com", true}, {".example.com", true}, {"*.example.com", true}, {"10.1.2.3", true},
		{"10.0.0.0/8", true}, {"fd00::/8", true}, {"*", true},
		{"10.0.0.0/33", false}, {"a/b", false}, {"host name", false}, {"", false},
	} {
		s := testStore()
		s.NoProxy = []string{tt.entry}
		if err := s.validate(); (err == nil) != tt.ok {
			t.Errorf("%q: %v, want ok=%v", tt.entry, err, tt.ok)
		}
	}
}

// TestCRLFHint: a delivery converted to CRLF line ends is malformed, and
// the message says what happened; only v<digits> is another version.
func TestCRLFHint(t *testing.T) {
	b := mk(t, hdr("crlf", "prod", 1, Machine(testMachine)), testStore(), nil, edSigner).Marshal()
	_, err := Parse(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
	if Reason(err) != "malformed" || !strings.Contains(err.Error(), "CRLF") {
		t.Fatalf("CRLF: %v", err)
	}
	for first, want := range map[string]string{
		"credagent-delivery/v2": "unsupported-version", "credagent-delivery/v10": "unsupported-version",
		"credagent-delivery/v2.0": "malformed", "credagent-delivery/v": "malformed", "credagent-delivery/x1": "malformed",
	} {
		if _, err := Parse(bytes.Replace(b, []byte(Version), []byte(first), 1)); Reason(err) != want {
			t.Errorf("%q: %v, want %s", first, err, want)
		}
	}
}
