package agent_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// sizeName is a limit named by size or length: a byte limit is named
// …Bytes instead, so that its unit is in its name (config keys on the wire
// keep their names; a limit in another unit says it, as MaxSizeMB does).
var sizeName = regexp.MustCompile(`^(?i:max)\w*(Size|Len|Length)$`)

// TestByteLimitsAreNamedBytes checks every constant, variable and struct
// field declared in the module's Go files (tests too).
func TestByteLimitsAreNamedBytes(t *testing.T) {
	t.Parallel()
	root := ".."
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin" || d.Name() == "dist") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		check := func(id *ast.Ident) {
			if sizeName.MatchString(id.Name) {
				t.Errorf("%s: %s: name a byte limit …Bytes", fset.Position(id.Pos()), id.Name)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for _, id := range n.Names {
					check(id)
				}
			case *ast.Field:
				for _, id := range n.Names {
					check(id)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
