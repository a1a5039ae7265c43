package localsock_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
)

// When dialEnv is set the test binary is a client run as another user: it
// dials the socket named there, says hello and exits 0; exit 3 means the
// connection was refused by permissions.
const dialEnv = "LOCALSOCK_TEST_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(dialEnv); path != "" {
		c, err := localsock.Dial(context.Background(), path)
		if err != nil {
			fmt.Println("dial:", err)
			if errors.Is(err, syscall.EACCES) {
				os.Exit(3)
			}
			os.Exit(4)
		}
		io.WriteString(c, "hi")
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil {
			fmt.Println("read:", err)
			os.Exit(5)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func groupName(t *testing.T, gid int) string {
	t.Helper()
	g, err := user.LookupGroupId(fmt.Sprint(gid))
	if err != nil {
		t.Skipf("no name for gid %d: %v", gid, err)
	}
	return g.Name
}

func TestContract(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, id *localsock.Identity) {
		if id.UID != uint32(os.Geteuid()) || id.GID != uint32(os.Getegid()) {
			t.Errorf("uid/gid = %d/%d, want %d/%d", id.UID, id.GID, os.Geteuid(), os.Getegid())
		}
		if id.PIDGuard != "pidfd" && id.PIDGuard != "starttime" {
			t.Errorf("PIDGuard = %q", id.PIDGuard)
		}
		if u, err := user.Current(); err == nil && id.Username != u.Username {
			t.Errorf("Username = %q, want %q", id.Username, u.Username)
		}
	}
	newPath := func(t *testing.T) string { return filepath.Join(t.TempDir(), "run", "agent.sock") }
	t.Run("Group", func(t *testing.T) {
		t.Parallel()
		localsocktest.Run(t, localsocktest.Config{
			NewPath:       newPath,
			Options:       localsock.ListenOptions{Group: groupName(t, os.Getegid())},
			CheckIdentity: check,
			Parallel:      true,
		})
	})
	t.Run("Dev", func(t *testing.T) {
		t.Parallel()
		localsocktest.Run(t, localsocktest.Config{
			NewPath:       newPath,
			Options:       localsock.ListenOptions{Dev: true},
			CheckIdentity: check,
			Parallel:      true,
		})
	})
}

func mode(t *testing.T, path string) (fs.FileMode, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid
}

func TestPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown to another group")
	}
	tests := []struct {
		name             string
		opts             localsock.ListenOptions
		dirPerm, sockPer fs.FileMode
		gid              uint32
	}{
		{"group", localsock.ListenOptions{Group: "nogroup"}, 0o750, 0o660, localsocktest.Nobody},
		{"dev", localsock.ListenOptions{Dev: true, Group: "nogroup"}, 0o700, 0o600, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			path := filepath.Join(dir, "agent.sock")
			ln, err := localsock.Listen(path, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if m, gid := mode(t, dir); m.Perm() != tt.dirPerm || !m.IsDir() || gid != tt.gid {
				t.Errorf("dir mode %v gid %d, want %v gid %d", m, gid, tt.dirPerm, tt.gid)
			}
			if m, gid := mode(t, path); m.Perm() != tt.sockPer || m.Type() != fs.ModeSocket || gid != tt.gid {
				t.Errorf("socket mode %v gid %d, want %v gid %d", m, gid, tt.sockPer, tt.gid)
			}
			// No temporary socket is left next to it.
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("socket dir holds %d entries, want 1", len(ents))
			}
		})
	}
}

func TestListenRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) (path string, opts localsock.ListenOptions)
		want  error
		msg   string
	}{
		{"missing group", func(t *testing.T) (string, localsock.ListenOptions) {
			return filepath.Join(t.TempDir(), "agent.sock"), localsock.ListenOptions{Group: "no-such-group-credagent"}
		}, localsock.ErrNoGroup, "api.socket_group"},
		{"not a socket", func(t *testing.T) (string, localsock.ListenOptions) {
			p := filepath.Join(t.TempDir(), "agent.sock")
			os.WriteFile(p, []byte("keep me"), 0o600)
			return p, localsock.ListenOptions{Dev: true}
		}, localsock.ErrNotSocket, ""},
		{"world-writable dir", func(t *testing.T) (string, localsock.ListenOptions) {
			d := t.TempDir()
			os.Chmod(d, 0o777)
			return filepath.Join(d, "agent.sock"), localsock.ListenOptions{Dev: true}
		}, nil, "writable by everyone"},
		{"relative path", func(t *testing.T) (string, localsock.ListenOptions) {
			return "agent.sock", localsock.ListenOptions{Dev: true}
		}, nil, "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, opts := tt.setup(t)
			ln, err := localsock.Listen(path, opts)
			if err == nil {
				ln.Close()
				t.Fatal("Listen succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to mention %q", err, tt.msg)
			}
		})
	}
	// Directories that are not the socket's own are refused, and left as
	// they were.
	if os.Geteuid() == 0 {
		for _, tt := range []struct {
			name string
			dir  func(t *testing.T) (dir string, reserved []string)
			msg  string
		}{
			{"another program's directory", func(t *testing.T) (string, []string) {
				d := t.TempDir()
				os.WriteFile(filepath.Join(d, "their.conf"), []byte("x"), 0o644)
				os.Chmod(d, 0o755)
				return d, nil
			}, "not a socket"},
			{"the state directory", func(t *testing.T) (string, []string) {
				d := t.TempDir()
				os.Chmod(d, 0o700)
				return d, []string{d}
			}, "must stay private"},
			{"/run", func(t *testing.T) (string, []string) { return "/run", nil }, "shared"},
			{"/var/run", func(t *testing.T) (string, []string) { return "/var/run", nil }, "shared"},
			{"/tmp", func(t *testing.T) (string, []string) { return "/tmp", nil }, "shared"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				dir, reserved := tt.dir(t)
				before, err := os.Stat(dir)
				if err != nil {
					t.Skip(err)
				}
				sock := filepath.Join(dir, "credagent-test-"+strconv.Itoa(os.Getpid())+".sock")
				ln, err := localsock.Listen(sock, localsock.ListenOptions{Group: "nogroup", Reserved: reserved})
				if err == nil {
					ln.Close()
					t.Fatal("Listen succeeded")
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("err = %v, want it to mention %q", err, tt.msg)
				}
				after, _ := os.Stat(dir)
				if after.Mode() != before.Mode() || after.Sys().(*syscall.Stat_t).Gid != before.Sys().(*syscall.Stat_t).Gid {
					t.Errorf("%s changed: %v -> %v", dir, before.Mode(), after.Mode())
				}
				if _, err := os.Lstat(sock); err == nil {
					t.Errorf("a socket was left at %s", sock)
				}
			})
		}
	}
	// The file that was not a socket is untouched.
	p := filepath.Join(t.TempDir(), "agent.sock")
	os.WriteFile(p, []byte("keep me"), 0o600)
	localsock.Listen(p, localsock.ListenOptions{Dev: true})
	if b, _ := os.ReadFile(p); string(b) != "keep me" {
		t.Errorf("non-socket file changed: %q", b)
	}
}

func TestStaleSocketRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	os.Mkdir(dir, 0o700)
	path := filepath.Join(dir, "agent.sock")
	// A socket whose server died: bound, not unlinked, closed.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal("stale socket not in place:", err)
	}
	ln, err := localsock.Listen(path, localsock.ListenOptions{Dev: true})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	c, err := localsock.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestOtherUser runs a client as nobody. With the socket group nogroup it
// gets through and is identified as nobody; with a group it is not in, the
// kernel refuses the connection.
func TestOtherUser(t *testing.T) {
	tests := []struct {
		group    string
		wantExit int
	}{
		{"nogroup", 0},
		{"root", 3},
	}
	for _, tt := range tests {
		t.Run(tt.group, func(t *testing.T) {
			path := filepath.Join(localsocktest.PublicDir(t), "run", "agent.sock")
			ln, err := localsock.Listen(path, localsock.ListenOptions{Group: tt.group})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ids := make(chan *localsock.Identity, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				id, err := localsock.PeerOf(c)
				if err != nil {
					t.Errorf("PeerOf: %v", err)
				}
				ids <- id
				io.CopyN(c, c, 2)
			}()
			out, err := localsocktest.RunAs(t, localsocktest.Nobody, localsocktest.Nobody, []string{dialEnv + "=" + path})
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantExit {
				t.Fatalf("child exit %d, want %d; output: %s", code, tt.wantExit, out)
			}
			if code != 0 {
				return
			}
			id := <-ids
			if id.UID != localsocktest.Nobody || id.GID != localsocktest.Nobody || id.PID == os.Getpid() {
				t.Errorf("identity %+v, want nobody in another process", id)
			}
			if !strings.HasSuffix(id.Exe, ".test") || id.Username != "nobody" {
				t.Errorf("identity %+v: want the copied test binary and user nobody", id)
			}
		})
	}
}

// TestUIDReusedByNewAccount deletes an account and gives its uid to a new
// one, as an administrator may: after FlushNames (which reload calls) the
// caller is named after the new account, not the deleted one.
func TestUIDReusedByNewAccount(t *testing.T) {
	// An earlier test's account may have had the uid this one gets.
	localsock.FlushNames()
	group, _ := localsocktest.NewGroup(t)
	old := localsocktest.NewUser(t, group)
	path := filepath.Join(localsocktest.PublicDir(t), "run", "agent.sock")
	ln, err := localsock.Listen(path, localsock.ListenOptions{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	names := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 2)
			io.ReadFull(c, buf)
			id, err := localsock.PeerOf(c)
			if err != nil {
				names <- "error: " + err.Error()
			} else {
				names <- id.Username
			}
			c.Write(buf)
			c.Close()
		}
	}()
	callAs := func(u localsocktest.User) string {
		t.Helper()
		if out, err := localsocktest.CommandAs(t, u, []string{dialEnv + "=" + path}, "-test.run=^$").CombinedOutput(); err != nil {
			t.Fatalf("child as %s: %v: %s", u.Name, err, out)
		}
		return <-names
	}
	if got := callAs(old); got != old.Name {
		t.Fatalf("caller named %q, want %q", got, old.Name)
	}
	if out, err := exec.Command("userdel", old.Name).CombinedOutput(); err != nil {
		t.Fatalf("userdel: %v: %s", err, out)
	}
	reused := localsocktest.NewUserArgs(t, []string{"--uid", fmt.Sprint(old.UID)}, group)
	if reused.UID != old.UID {
		t.Fatalf("new account has uid %d, want %d", reused.UID, old.UID)
	}
	localsock.FlushNames()
	if got := callAs(reused); got != reused.Name {
		t.Fatalf("after the uid was given to %s and the names flushed, the caller is named %q", reused.Name, got)
	}
}
