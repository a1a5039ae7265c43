package daemon

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/credagent/credagent"

// configImporters are the packages below the daemon that may import the
// config file's package, and why: none. Every one takes its own options,
// which the daemon fills (settings.go). (doctor, which checks the config
// file itself, sits beside the daemon in the command: the store probe the
// agent runs for it is package storeprobe, which takes options.)
var configImporters = map[string]string{}

// TestConfigAtTheEdge: no package that the daemon builds on imports
// package config, but those in configImporters. It reads the imports of
// every non-test Go file (all platforms), so it needs no toolchain.
func TestConfigAtTheEdge(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skipf("no module source here: %v", err)
	}
	imports := func(pkg string) []string {
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(pkg, module)))
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		var out []string
		for _, p := range pkgs {
			for _, f := range p.Files {
				for _, is := range f.Imports {
					path, _ := strconv.Unquote(is.Path.Value)
					if strings.HasPrefix(path, module+"/") && !slices.Contains(out, path) {
						out = append(out, path)
					}
				}
			}
		}
		return out
	}
	// Walk what the daemon imports, transitively, within the module.
	seen := map[string]bool{}
	var below []string
	var walk func(pkg string)
	walk = func(pkg string) {
		for _, dep := range imports(pkg) {
			if !seen[dep] {
				seen[dep] = true
				below = append(below, dep)
				walk(dep)
			}
		}
	}
	walk(module + "/agent/daemon")
	for _, must := range []string{"/agent/ccp", "/agent/localapi", "/agent/resolve", "/agent/logging", "/agent/inbox", "/agent/feed", "/agent/service/storeprobe"} {
		if !seen[module+must] {
			t.Errorf("the walk did not reach %s: it is broken", must)
		}
	}
	for _, pkg := range below {
		if pkg == module+"/config" {
			continue
		}
		if slices.Contains(imports(pkg), module+"/config") {
			if _, ok := configImporters[pkg]; !ok {
				t.Errorf("%s imports config: give it its own options and fill them in agent/daemon/settings.go", pkg)
			}
		}
	}
	if slices.Contains(imports(module+"/agent/ccp"), module+"/agent/state") {
		t.Error("agent/ccp imports agent/state: a CCP client takes Options, which the daemon fills from a store")
	}
}
