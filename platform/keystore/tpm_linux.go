//go:build linux

package keystore

import (
	"bytes"
	"crypto/ecdh"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// The tpm backend
//
// The storage root key (SRK) is made with TPM2_CreatePrimary from the TCG's
// standard ECC P-256 SRK template each time a store is opened: the TPM
// derives it from its owner seed, so it is the same key until the TPM is
// cleared, and nothing has to be persisted in the TPM's NV memory. The owner
// hierarchy's auth must be empty (the default; tpm2-tools and systemd leave
// it so).
//
// A machine key is a P-256 ECDH key (decrypt, scheme ECDH, not duplicable:
// fixedTPM and fixedParent) created under the SRK. Only its TPM-wrapped
// blobs are kept, in <dir>/<name>.tpmkey, a private file (fsutil) with this
// layout:
//
//	"credagent-tpmkey-v1\n"
//	uint16 length, then the SRK's TPM name when the key was made
//	uint16 length, then the key's TPM2B_PUBLIC
//	uint16 length, then the key's TPM2B_PRIVATE (encrypted by the SRK)
//
// The private blob is useless without this machine's TPM. If the SRK's name
// differs from the one recorded, or the TPM refuses to load the blob, the
// TPM was cleared or replaced: Open fails with ErrNeedsReenroll.
//
// ECDH loads the key under the SRK, runs TPM2_ECDH_ZGen and flushes the key
// (a TPM has only a few object slots). ZGen runs over a one-use HMAC session
// salted with the SRK, with AES-128-CFB parameter encryption in both
// directions, so neither the peer point nor the shared secret crosses the
// bus in the clear. Create and Load use a password session with the SRK's
// empty auth: nothing secret crosses the bus there.

const tpmFileMagic = "credagent-tpmkey-v1\n"

// tpmCommandTimeout bounds one command over a socket (swtpm).
const tpmCommandTimeout = 30 * time.Second

// TPMStore keeps TPM-wrapped keys in a directory and does ECDH in the TPM.
type TPMStore struct {
	blobs  keyDir
	device string

	mu sync.Mutex // guards everything below, and serialises TPM commands
	tpmConn
	closed bool
}

var _ Store = (*TPMStore)(nil)

// tpmKeyTemplate is the machine key: P-256, ECDH only, bound to this TPM.
var tpmKeyTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		// The key's auth value is empty; there is nothing for dictionary
		// attack protection to protect, and a lockout must not stop the
		// agent.
		NoDA:    true,
		Decrypt: true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme: tpm2.TPMTECCScheme{
			Scheme: tpm2.TPMAlgECDH,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDH,
				&tpm2.TPMSKeySchemeECDH{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
		KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	}),
}

// OpenTPMStore connects to the TPM at device (see Options.TPMDevice),
// creates the SRK and returns the store over dir.
func OpenTPMStore(device, dir string) (*TPMStore, error) {
	if dir == "" {
		return nil, errors.New("keystore: tpm backend needs a directory for its key blobs")
	}
	if device == "" {
		device = DefaultTPMDevice
	}
	blobs, err := openKeyDir(dir, TPMFileExt)
	if err != nil {
		return nil, err
	}
	c, err := connectTPM(device)
	if err != nil {
		return nil, err
	}
	return &TPMStore{blobs: blobs, device: device, tpmConn: *c}, nil
}

// tpmConn is an open TPM connection with the storage root key loaded.
type tpmConn struct {
	tpm     transport.TPMCloser
	srk     tpm2.TPMHandle
	srkName tpm2.TPM2BName
	srkPub  tpm2.TPMTPublic
}

// connectTPM dials device and creates the SRK from the standard ECC SRK
// template: the same TPM gives the same SRK every time, so its name tells
// whether the TPM was cleared.
func connectTPM(device string) (*tpmConn, error) {
	t, err := dialTPM(device)
	if err != nil {
		return nil, fmt.Errorf("keystore: TPM %s: %w", device, err)
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(t)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("keystore: TPM %s: creating the storage root key: %w", device, err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		flush(t, rsp.ObjectHandle)
		t.Close()
		return nil, fmt.Errorf("keystore: TPM %s: storage root key: %w", device, err)
	}
	return &tpmConn{tpm: t, srk: rsp.ObjectHandle, srkName: rsp.Name, srkPub: *pub}, nil
}

func openTPM(opts Options) (Store, error) { return OpenTPMStore(opts.TPMDevice, opts.Dir) }

// reconnect replaces a broken TPM connection: it dials the device again and
// recreates the SRK. An SRK with another name means the TPM was cleared:
// the keys wrapped by the old one are gone, which is ErrNeedsReenroll. The
// caller holds s.mu.
func (s *TPMStore) reconnect() error {
	s.tpm.Close()
	c, err := connectTPM(s.device)
	if err != nil {
		return err
	}
	s.tpm = c.tpm // closed by Close from now on, even if the SRK changed
	if !bytes.Equal(c.srkName.Buffer, s.srkName.Buffer) {
		flush(c.tpm, c.srk)
		return fmt.Errorf("%w: the TPM's storage root key changed (the TPM was cleared)", ErrNeedsReenroll)
	}
	s.srk, s.srkPub = c.srk, c.srkPub
	return nil
}

// isTransportErr reports whether err is a failure of the connection to the
// TPM rather than an answer from it.
func isTransportErr(err error) bool {
	var opErr *net.OpError
	var pathErr *fs.PathError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ENOENT) || errors.As(err, &opErr) || errors.As(err, &pathErr)
}

// Create implements Store.
func (s *TPMStore) Create(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if s.blobs.exists(name) {
		return nil, ErrExists // without a TPM2_Create, which is slow
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	rsp, err := tpm2.Create{
		ParentHandle: s.srkAuth(),
		InPublic:     tpm2.New2B(tpmKeyTemplate),
	}.Execute(s.tpm)
	if err != nil {
		return nil, fmt.Errorf("keystore: TPM2_Create: %w", err)
	}
	blob := encodeTPMBlob(s.srkName.Buffer, tpm2.Marshal(rsp.OutPublic), tpm2.Marshal(rsp.OutPrivate))
	if err := s.blobs.create(name, blob); err != nil {
		return nil, err
	}
	k, err := s.newKey(rsp.OutPublic, rsp.OutPrivate)
	if err != nil {
		return nil, fmt.Errorf("keystore: loading the new key: %w", err)
	}
	return k, nil
}

// Open implements Store.
func (s *TPMStore) Open(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	data, err := s.blobs.read(name)
	if err != nil {
		return nil, err
	}
	p := s.blobs.path(name)
	srkName, pubBytes, privBytes, err := decodeTPMBlob(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNeedsReenroll, p, err)
	}
	pub, err1 := tpm2.Unmarshal[tpm2.TPM2BPublic](pubBytes)
	priv, err2 := tpm2.Unmarshal[tpm2.TPM2BPrivate](privBytes)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNeedsReenroll, p, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if !bytes.Equal(srkName, s.srkName.Buffer) {
		return nil, fmt.Errorf("%w: the TPM's storage root key has changed since %s was made (was the TPM cleared or replaced?)", ErrNeedsReenroll, p)
	}
	k, err := s.newKey(*pub, *priv)
	if err != nil {
		var rc tpm2.TPMRC
		if errors.As(err, &rc) {
			// The TPM itself refused the blob.
			return nil, fmt.Errorf("%w: the TPM will not load %s: %v", ErrNeedsReenroll, p, err)
		}
		return nil, fmt.Errorf("keystore: loading %s: %w", p, err)
	}
	return k, nil
}

// newKey checks that the TPM loads the wrapped key, and returns it. Keys
// are not kept loaded: a TPM has few object slots (three on many), so ECDH
// loads the key, uses it and flushes it. s.mu is held.
func (s *TPMStore) newKey(pub tpm2.TPM2BPublic, priv tpm2.TPM2BPrivate) (*tpmKey, error) {
	ecdhPub, err := tpmPublicKey(pub)
	if err != nil {
		return nil, err
	}
	k := &tpmKey{s: s, pub2b: pub, priv2b: priv, pub: ecdhPub, id: KeyID(ecdhPub)}
	h, _, err := k.load()
	if err != nil {
		return nil, err
	}
	flush(s.tpm, h)
	return k, nil
}

// srkAuth authorises use of the SRK with its (empty) auth value. Create
// and Load carry nothing secret (the private blob is encrypted by the
// SRK), so a password session does; ECDH uses the encrypted session.
func (s *TPMStore) srkAuth() tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: s.srk, Name: s.srkName, Auth: tpm2.PasswordAuth(nil)}
}

// session is a one-use HMAC session salted with the SRK, with AES-128-CFB
// parameter encryption both ways.
func (s *TPMStore) session() tpm2.Session {
	return tpm2.HMAC(tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(s.srk, s.srkPub),
		tpm2.AESEncryption(128, tpm2.EncryptInOut))
}

func tpmPublicKey(pub tpm2.TPM2BPublic) (*ecdh.PublicKey, error) {
	p, err := pub.Contents()
	if err != nil {
		return nil, err
	}
	if p.Type != tpm2.TPMAlgECC {
		return nil, errors.New("the TPM key is not an ECC key")
	}
	parms, err := p.Parameters.ECCDetail()
	if err != nil {
		return nil, err
	}
	if parms.CurveID != tpm2.TPMECCNistP256 {
		return nil, errors.New("the TPM key is not on P-256")
	}
	pt, err := p.Unique.ECC()
	if err != nil {
		return nil, err
	}
	return ecdh.P256().NewPublicKey(sec1Point(pt.X.Buffer, pt.Y.Buffer))
}

// sec1Point is the uncompressed SEC 1 encoding of a P-256 point, padding
// each coordinate to 32 bytes (a TPM may strip leading zeros).
func sec1Point(x, y []byte) []byte {
	out := make([]byte, 65)
	out[0] = 4
	if len(x) > 32 || len(y) > 32 {
		return nil // NewPublicKey rejects it
	}
	copy(out[1+32-len(x):33], x)
	copy(out[33+32-len(y):], y)
	return out
}

// Delete implements Store.
func (s *TPMStore) Delete(name string) error { return s.blobs.remove(name) }

// Rename implements Renamer.
func (s *TPMStore) Rename(from, to string) error { return s.blobs.rename(from, to) }

// Info implements Store.
func (s *TPMStore) Info() Info {
	return Info{Backend: BackendTPM, HardwareBacked: true, Detail: s.device + ", blobs in " + s.blobs.dir}
}

// Close flushes the SRK and the loaded keys and closes the TPM connection.
// Keys from this store stop working.
func (s *TPMStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	flush(s.tpm, s.srk)
	return s.tpm.Close()
}

func flush(t transport.TPM, h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(t)
}

// tpmKey is a TPM-wrapped key, loaded into the TPM for each use.
type tpmKey struct {
	s      *TPMStore
	pub2b  tpm2.TPM2BPublic
	priv2b tpm2.TPM2BPrivate // encrypted by the SRK; useless outside this TPM
	pub    *ecdh.PublicKey
	id     string
}

// load loads the key under the SRK. The caller flushes the handle. s.mu is
// held.
func (k *tpmKey) load() (tpm2.TPMHandle, tpm2.TPM2BName, error) {
	rsp, err := tpm2.Load{
		ParentHandle: k.s.srkAuth(),
		InPrivate:    k.priv2b,
		InPublic:     k.pub2b,
	}.Execute(k.s.tpm)
	if err != nil {
		return 0, tpm2.TPM2BName{}, err
	}
	return rsp.ObjectHandle, rsp.Name, nil
}

var _ Key = (*tpmKey)(nil)

func (k *tpmKey) PublicKey() *ecdh.PublicKey { return k.pub }
func (k *tpmKey) Curve() ecdh.Curve          { return ecdh.P256() }
func (k *tpmKey) ID() string                 { return k.id }
func (k *tpmKey) String() string             { return "keystore.Key(tpm " + k.id + ")" }

// ECDH runs TPM2_ECDH_ZGen and returns the X coordinate of the shared point,
// as crypto/ecdh does.
func (k *tpmKey) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, errors.New("keystore: ECDH: peer key is not P-256")
	}
	b := peer.Bytes() // 0x04 || X || Y
	in := tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: b[1:33]},
		Y: tpm2.TPM2BECCParameter{Buffer: b[33:65]},
	}
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	if k.s.closed {
		return nil, errClosed
	}
	h, name, err := k.load()
	if err != nil && isTransportErr(err) {
		// The connection to the TPM broke (a restarted resource manager or
		// simulator): reconnect once and try again.
		if rerr := k.s.reconnect(); rerr != nil {
			return nil, fmt.Errorf("keystore: the TPM connection broke (%v) and reconnecting failed: %w", err, rerr)
		}
		h, name, err = k.load()
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: loading the key into the TPM: %w", err)
	}
	defer flush(k.s.tpm, h)
	rsp, err := tpm2.ECDHZGen{
		KeyHandle: tpm2.AuthHandle{Handle: h, Name: name, Auth: k.s.session()},
		InPoint:   tpm2.New2B(in),
	}.Execute(k.s.tpm)
	if err != nil {
		return nil, fmt.Errorf("keystore: TPM2_ECDH_ZGen: %w", err)
	}
	out, err := rsp.OutPoint.Contents()
	if err != nil {
		return nil, fmt.Errorf("keystore: TPM2_ECDH_ZGen: %w", err)
	}
	if len(out.X.Buffer) > 32 {
		return nil, errors.New("keystore: TPM2_ECDH_ZGen: bad point")
	}
	z := make([]byte, 32)
	copy(z[32-len(out.X.Buffer):], out.X.Buffer)
	return z, nil
}

func encodeTPMBlob(fields ...[]byte) []byte {
	out := []byte(tpmFileMagic)
	for _, f := range fields {
		out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	return out
}

func decodeTPMBlob(b []byte) (srkName, pub, priv []byte, err error) {
	if !bytes.HasPrefix(b, []byte(tpmFileMagic)) {
		return nil, nil, nil, errors.New("not a credagent TPM key file")
	}
	b = b[len(tpmFileMagic):]
	var f [3][]byte
	for i := range f {
		if len(b) < 2 {
			return nil, nil, nil, io.ErrUnexpectedEOF
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if len(b) < n {
			return nil, nil, nil, io.ErrUnexpectedEOF
		}
		f[i], b = b[:n], b[n:]
	}
	if len(b) != 0 {
		return nil, nil, nil, errors.New("trailing data")
	}
	return f[0], f[1], f[2], nil
}

// dialTPM opens the TPM named by device: a device path, tcp://HOST:PORT or
// unix:///PATH (a swtpm server socket speaking raw TPM commands).
func dialTPM(device string) (transport.TPMCloser, error) {
	switch {
	case strings.HasPrefix(device, "tcp://"):
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(device, "tcp://"), 5*time.Second)
		if err != nil {
			return nil, err
		}
		return &streamTPM{c: c}, nil
	case strings.HasPrefix(device, "unix://"):
		c, err := net.DialTimeout("unix", strings.TrimPrefix(device, "unix://"), 5*time.Second)
		if err != nil {
			return nil, err
		}
		return &streamTPM{c: c}, nil
	default:
		return linuxtpm.Open(device)
	}
}

// streamTPM sends TPM commands over a stream socket, as swtpm's server
// socket expects: the raw command, then the raw response, whose header
// gives its length. (go-tpm's tcp transport speaks the Microsoft
// simulator's framing, which swtpm does not.)
type streamTPM struct {
	c net.Conn
}

const maxTPMResponseBytes = 64 << 10

func (t *streamTPM) Send(cmd []byte) ([]byte, error) {
	if err := t.c.SetDeadline(time.Now().Add(tpmCommandTimeout)); err != nil {
		return nil, err
	}
	if _, err := t.c.Write(cmd); err != nil {
		return nil, err
	}
	// Header: tag (2), size (4), response code (4).
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(t.c, hdr); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < 10 || size > maxTPMResponseBytes {
		return nil, fmt.Errorf("TPM response of %d bytes", size)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr)
	if _, err := io.ReadFull(t.c, rsp[10:]); err != nil {
		return nil, err
	}
	return rsp, nil
}

func (t *streamTPM) Close() error { return t.c.Close() }
