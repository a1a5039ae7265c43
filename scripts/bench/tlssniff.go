package main

import "encoding/binary"

// Handshake kinds told apart by serverHelloKind.
const (
	helloUnknown = iota // not a TLS 1.3 ServerHello we can read
	helloFull           // a full handshake
	helloResumed        // the server accepted a pre-shared key: a resumption
)

// extPreSharedKey is the TLS 1.3 pre_shared_key extension (RFC 8446 4.2.11):
// in a ServerHello it means the server accepted a PSK, i.e. the session was
// resumed.
const extPreSharedKey = 41

// serverHelloKind reads the first bytes a TLS server writes on a connection
// (the record carrying its ServerHello, which is in the clear) and says
// whether the handshake is a TLS 1.3 resumption. The fake CCP does not count
// resumptions itself, so the harness counts them on the wire.
func serverHelloKind(b []byte) int {
	// Record header: type 22 (handshake), version, length.
	if len(b) < 5 || b[0] != 22 {
		return helloUnknown
	}
	rec := b[5:]
	if n := int(binary.BigEndian.Uint16(b[3:5])); n < len(rec) {
		rec = rec[:n]
	}
	// Handshake header: type 2 (server_hello), 24-bit length.
	if len(rec) < 4 || rec[0] != 2 {
		return helloUnknown
	}
	msg := rec[4:]
	if n := int(rec[1])<<16 | int(rec[2])<<8 | int(rec[3]); n < len(msg) {
		msg = msg[:n]
	}
	// legacy_version(2) random(32) session_id<0..32> cipher_suite(2)
	// compression(1) extensions<..>
	if len(msg) < 35 {
		return helloUnknown
	}
	p := 34
	p += 1 + int(msg[p])
	p += 3
	if p+2 > len(msg) {
		return helloUnknown
	}
	exts := msg[p+2:]
	if n := int(binary.BigEndian.Uint16(msg[p:])); n < len(exts) {
		exts = exts[:n]
	}
	tls13 := false
	psk := false
	for len(exts) >= 4 {
		typ := binary.BigEndian.Uint16(exts)
		n := int(binary.BigEndian.Uint16(exts[2:]))
		if 4+n > len(exts) {
			return helloUnknown
		}
		switch typ {
		case 43: // supported_versions: only TLS 1.3 ServerHellos carry it
			tls13 = n == 2 && binary.BigEndian.Uint16(exts[4:]) == 0x0304
		case extPreSharedKey:
			psk = true
		}
		exts = exts[4+n:]
	}
	switch {
	case !tls13:
		return helloUnknown
	case psk:
		return helloResumed
	}
	return helloFull
}
